from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopflow.store.idmap import IdMap


def test_round_trip_extend_and_save(tmp_path: Path) -> None:
    m = IdMap.from_ids(["b", "a", "b", "c"])
    assert len(m) == 3 and m.external_ids == ("b", "a", "c")
    assert m.to_index(["c", "b"]).tolist() == [2, 0]
    assert m.to_index(["c", "zz"], missing=-1).tolist() == [2, -1]
    assert m.to_external(np.array([1, 0])) == ["a", "b"]
    with pytest.raises(KeyError, match="unknown id 'zz'"):
        m.index_of("zz")
    grown = m.extend(["d", "a", "e"])
    assert grown.to_index(["b", "a", "c", "d", "e"]).tolist() == [0, 1, 2, 3, 4]
    assert m.extend(["a"]) is m
    m.save(tmp_path / "ids.json")
    assert IdMap.load(tmp_path / "ids.json") == m
    with pytest.raises(ValueError, match="unique"):
        IdMap(["x", "x"])
