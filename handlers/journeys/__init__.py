"""Journeys in the worker: instances kept in Redis, moved by the step machine
(rules/journey_machine.py) one stop at a time."""
