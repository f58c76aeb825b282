"""The contract: CloudEvents envelopes, event payloads and the trigger message.

docs/DESIGN.md §1 "The event contract" and §4 "The trigger contract" are the source;
these models are its executable form.
"""
