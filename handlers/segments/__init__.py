"""Live segments: who is in each customer group, kept current as profiles and time change."""
