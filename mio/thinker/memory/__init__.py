"""Hierarchical memory of the Thinker (§6.2): short-term buffer (thinker.Conversation), the diegetic
knowledge graph with story time (graph.py) and each user's episodic memory (episodic.py)."""
