"""Importers: read a dataset or a shop's export, validate every row, append it durably.

``run_import(fmt, path, store)`` is the one entry point (the ``shopflow import`` command, the demo
and the tests use it); ``IMPORTERS`` lists the formats. Each format is one module with a
:class:`Reader` that yields raw records; validation, batching and the durable append
are shared (``runner``).
"""

from shopflow.ingest.importers.base import (
    BadRow,
    ImportOptions,
    ImportReport,
    ItemRow,
    Reader,
)
from shopflow.ingest.importers.runner import IMPORTERS, get_reader, run_import

__all__ = [
    "IMPORTERS",
    "BadRow",
    "ImportOptions",
    "ImportReport",
    "ItemRow",
    "Reader",
    "get_reader",
    "run_import",
]
