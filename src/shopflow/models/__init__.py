"""Models: candidate sources and rankers, each behind the contract in ``models.base``."""
