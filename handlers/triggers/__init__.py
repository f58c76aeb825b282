"""Rules turned into triggers: evaluation, timers, guards and the outbox."""
