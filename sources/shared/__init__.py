"""costsync."""
