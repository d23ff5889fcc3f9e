"""LLM backends of the Thinker: llama.cpp (embedded GGUF) and any OpenAI-compatible server."""
