"""Dialects: peer libraries' layers expressed as ctsnn models + ``discretize``."""
