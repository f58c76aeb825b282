"""The contract: CloudEvents envelopes, event payloads and the trigger message (DESIGN.md §1, §4)."""
