"""UniLS (§3): one model for speaking and listening faces; see docs/face.md."""
