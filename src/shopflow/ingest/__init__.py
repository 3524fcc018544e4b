"""Ingest: the schema of what a shop sends, its validation, the importers and the demo shop."""
