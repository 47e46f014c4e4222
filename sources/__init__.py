"""dlt sources for the FinOps APIs costsync syncs."""
