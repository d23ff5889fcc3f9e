"""talker voices package."""
