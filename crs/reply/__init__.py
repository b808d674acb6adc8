"""Replying: the grounding guard over what the LLM writes (titles and facts), answers and explanations from
records, the parts of a reply composed without the LLM, and the tuned reply writer's inputs and training examples."""
