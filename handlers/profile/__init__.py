"""Live customer profiles in Redis: applying batches, reading profiles back."""
