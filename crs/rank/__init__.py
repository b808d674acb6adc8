"""Ranking: what may be recommended (the exclusion check), and how candidates are found and scored."""
