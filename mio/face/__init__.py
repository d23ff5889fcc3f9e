"""face package."""
