"""ReDial conversational recommendation, measured with the product's own pipeline.

For every recommender turn with gold movies, the whole ReDial catalog is ranked from the dialogue
so far, the way the agent does it:

1. understanding: ``crs.understand.linker.Linker`` finds movies, genres and people in every utterance (plus the
   movie ids the data format gives, see ``crs.eval.redial.data``); ``crs.understand.nlu.understand`` reads
   the seeker's utterances into ``crs.state.BeliefUpdate``s, merged with ``crs.state.apply``;
2. retrieval: the ``crs.rank.store.ItemStore`` vectors (shipped MiniLM over the items' text) against a
   query built as ``crs.rank.candidates.retrieve`` builds it: the seeker's words not under a negation, plus
   the items they like; cosine over the full catalog (``store.search`` with k = all items);
3. scoring: a weighted sum like ``crs.rank.candidates.score`` (similarity, liked-genre bonus, popularity)
   with the sequential scorer (SASRec over the movies mentioned so far), item-item co-occurrence
   in training dialogues and item-item cosine over MovieLens users (``crs.eval.redial.model``);
   the weights are chosen on held-out training dialogues, never on the evaluated file;
4. dispreference filtering: disliked movies never come back, disliked genres sink; in the
   ``no_repeat`` ranking every movie already mentioned is excluded, as the agent never
   recommends what was already named.

Recall@k is counted per (turn, gold movie), as UniCRS and CRSLab do; ``no_repeat`` drops gold
movies already mentioned earlier in the context (Kostric & Balog).
"""
