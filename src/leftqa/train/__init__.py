"""Training the learned parts from public data: SQuAD 2.0 pairs, the cross-encoder answer scorer, its combination weights."""
