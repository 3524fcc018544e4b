from __future__ import annotations

from pathlib import Path

import pytest

from shopflow.errors import NotFound
from shopflow.store.bundles import BundleStore


def test_publish_is_atomic_and_failures_leave_the_current_bundle(tmp_path: Path) -> None:
    bundles = BundleStore(tmp_path / "bundles")
    assert bundles.current() is None and bundles.versions() == []
    with pytest.raises(NotFound, match="shopflow train"):
        bundles.manifest()
    with bundles.new_version() as w:
        (w.path / "weights.bin").write_bytes(b"v1")
        w.manifest["models"] = {"pop": "models/pop"}
    first = bundles.current_version()
    assert first is not None and bundles.manifest()["models"] == {"pop": "models/pop"}
    assert (bundles.current() / "weights.bin").read_bytes() == b"v1"

    with pytest.raises(RuntimeError), bundles.new_version() as w:
        (w.path / "weights.bin").write_bytes(b"half")
        raise RuntimeError("training crashed")
    assert bundles.current_version() == first
    assert bundles.versions() == [first]
    assert not [p for p in (tmp_path / "bundles").iterdir() if p.name.startswith(".tmp")]

    with bundles.new_version(publish=False) as w:
        pass
    assert bundles.current_version() == first  # written, not yet in force
    bundles.publish(w.version)
    assert bundles.current_version() == w.version
    with pytest.raises(NotFound):
        bundles.publish("nope")
    assert bundles.prune(keep=1) == [first]
    assert bundles.versions() == [w.version]
