"""Text understanding: sentence embeddings of item text (``text.encoder``), search indexes."""
