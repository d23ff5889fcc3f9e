"""thinker package."""
