"""Answering: hybrid retrieval, sentence features, follow-ups, extractive answers with citations, the Assistant."""
