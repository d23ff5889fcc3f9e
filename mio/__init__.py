"""Mio: an interactive digital human."""
__version__ = "0.1.0"
