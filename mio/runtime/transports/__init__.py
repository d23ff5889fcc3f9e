"""Transports: where a session's frames go (MP4 file, web page, engine parameter stream)."""
