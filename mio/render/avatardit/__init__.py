"""AvatarDiT (paper §5.2): a Wan-Animate video DiT driven by face parameters, body control renders and a camera."""
