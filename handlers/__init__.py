"""What one batch of events or triggers does to the stores (Redis), with no Faust in sight."""
