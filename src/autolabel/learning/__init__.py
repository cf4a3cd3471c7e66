"""Learning from reviews: every human decision teaches the labeler.

One module per responsibility, pure functions over arrays and records where possible
(the live loop, ``relabel`` and ``simulate`` share them):

- ``embeddings``       offline text embeddings (lexical by default; GGUF optional), cached
- ``demonstrations``   k demonstrations per item by similarity + MMR + label diversity
- ``pool``             the demonstrations pool of an ontology, read from the store
- ``recalibration``    temperature / Platt / isotonic calibrators (pure numpy)
- ``calibrators``      calibrators fitted on decisions, stored and versioned
- ``active``           active queue ordering (uncertainty × novelty, audit share)
- ``label_errors``     label-error detection with cleanlab (optional extra)
- ``relabel``          re-label undecided items as a child run, re-route, withdraw
- ``simulate``         replay gold as the reviewer: effort-to-quality curves
"""
