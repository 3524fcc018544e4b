"""Features: sequences, item, user and context features — one code path offline and online."""
