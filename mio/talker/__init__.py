"""talker package."""
