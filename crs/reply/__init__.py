"""Replying: the tuned reply writer's inputs and training examples."""
