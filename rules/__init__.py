"""The rule and segment engine; pure computation, no I/O."""
