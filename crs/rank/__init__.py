"""Ranking: what may be recommended (the exclusion check), how candidates are found (the Chroma item store and
its embeddings) and scored (the fused score, the sequential scorer)."""
