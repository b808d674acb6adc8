"""Chat models: the ChatModel protocol, the local transformers backend, the OpenAI-compatible client, and the registry that picks one from the config."""
