"""Versioned model bundles on disk, published atomically.

A bundle is one directory under ``<data_dir>/bundles/``: ``manifest.json`` (version, creation time,
training cutoff, models and their sub-directories, feature list, offline metrics), the id maps
(``items.json``, ``users.json``) and one sub-directory per model (``models/<name>/``, written by
``Recommender.save``). A bundle is written into a hidden temporary directory and renamed into place;
then the ``CURRENT`` file, which names the bundle in force, is replaced with an atomic rename. A
reader therefore sees either the old bundle or the new one, never half of one.

Example
-------
>>> import tempfile
>>> root = BundleStore(tempfile.mkdtemp())
>>> with root.new_version() as w:
...     (w.path / "note.txt").write_text("hello")
...     w.manifest["models"] = {}
5
>>> root.current().name == root.versions()[-1]
True
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopflow.errors import NotFound

MANIFEST = "manifest.json"
CURRENT = "CURRENT"


@dataclass
class BundleWriter:
    """A bundle being written: put files under ``path`` and fill ``manifest``."""

    path: Path
    version: str
    manifest: dict[str, Any] = field(default_factory=dict)


class BundleStore:
    """The bundles under one root directory and the pointer to the one in force."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @contextmanager
    def new_version(self, publish: bool = True) -> Iterator[BundleWriter]:
        """Write a new bundle; on success it is renamed into place and (by default) made current.

        On an exception the partial bundle is removed and the current one stays in force.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        version = now.strftime("%Y%m%dT%H%M%S.%f") + f"-{uuid.uuid4().hex[:4]}"
        tmp = self.root / f".tmp-{version}"
        tmp.mkdir()
        writer = BundleWriter(tmp, version, {"version": version, "created_at": now.isoformat()})
        try:
            yield writer
            writer.manifest.setdefault("version", version)
            (tmp / MANIFEST).write_text(json.dumps(writer.manifest, indent=2, default=str))
            _fsync_dir(tmp)
            final = self.root / version
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if publish:
            self.publish(version)

    def publish(self, version: str) -> None:
        """Make ``version`` the bundle in force (atomic replace of ``CURRENT``)."""
        if not (self.root / version / MANIFEST).is_file():
            raise NotFound(f"no bundle {version!r} under {self.root}")
        tmp = self.root / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
        tmp.write_text(version)
        os.replace(tmp, self.root / CURRENT)

    def versions(self) -> list[str]:
        """Complete bundles, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
        )

    def current_version(self) -> str | None:
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        version = pointer.read_text().strip()
        return version if (self.root / version / MANIFEST).is_file() else None

    def current(self) -> Path | None:
        """Directory of the bundle in force, or None when nothing was trained yet."""
        version = self.current_version()
        return self.root / version if version else None

    def manifest(self, version: str | None = None) -> dict[str, Any]:
        version = version or self.current_version()
        if version is None:
            raise NotFound(f"no model bundle under {self.root}: run `shopflow train`")
        return json.loads((self.root / version / MANIFEST).read_text())

    def prune(self, keep: int = 3) -> list[str]:
        """Remove all but the newest ``keep`` bundles (never the current one); return what went."""
        current = self.current_version()
        old = [v for v in self.versions()[:-keep] if v != current] if keep > 0 else []
        for v in old:
            shutil.rmtree(self.root / v, ignore_errors=True)
        return old


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
