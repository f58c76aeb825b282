"""The contract: CloudEvents envelopes, event payloads and the trigger message.

DESIGN.md §1 and §4 are the source; these models are its executable form.
"""
