"""The Faust application: topics, agents, timers, web views and the command line.

This is the only package that imports Faust. Everything an agent does with a
batch is a call into ``handlers``.
"""
