"""Entry points: the costsync CLI and one demo pipeline script per vendor."""
