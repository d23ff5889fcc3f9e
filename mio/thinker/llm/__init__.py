"""thinker llm package."""
