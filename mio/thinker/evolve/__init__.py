"""Thinker self-evolution (§6.2.1-6.2.2): trajectories, multimodal reward decomposition, self-play, GRPO."""
