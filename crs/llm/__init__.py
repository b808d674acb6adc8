"""Chat models: the ChatModel protocol, the local transformers backend, the OpenAI-compatible client, a scripted
double, the registry that picks one from the config, and the prompt templates of every LLM task."""
