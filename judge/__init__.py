"""judge: sample a model, score it with an LLM judge and offline metrics."""
