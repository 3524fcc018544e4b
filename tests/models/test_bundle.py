"""Bundles: load_bundle reads back what write_bundle wrote; a failed write publishes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shopflow.errors import NotFound
from shopflow.features.sequences import InteractionData
from shopflow.models.bundle import (
    BundleError,
    ItemColumns,
    load_bundle,
    load_current,
    model_class,
    write_bundle,
)
from shopflow.models.popular import Trending
from shopflow.models.registry import get_model
from shopflow.store.bundles import BundleStore
from shopflow.store.idmap import IdMap

ITEMS = IdMap(["a", "b", "c", "d", "e"])
USERS = IdMap(["u1", "u2", "u3"])
SEQS = [np.array([0, 1, 2, 1]), np.array([1, 2, 3]), np.array([0, 4])]
TYPES = [
    np.array(["view", "view", "purchase", "view"]),
    np.array(["view", "purchase", "purchase"]),
    np.array(["view", "add_to_cart"]),
]
TIMES = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.5, 3.5]), np.array([5.0, 6.0])]
HISTORIES = [np.array([0]), np.array([1, 2]), np.array([3, 0, 4]), np.array([], dtype=np.int64)]


def data() -> InteractionData:
    return InteractionData("toy", USERS, ITEMS, SEQS, TIMES, TYPES)


def columns() -> ItemColumns:
    return ItemColumns(
        ids=ITEMS,
        titles=["Tea", "Cup", None, "Pot", "Lid"],
        texts=["Tea. Acme", "Cup", None, "Pot", "Lid"],
        brands=["Acme", None, None, "Acme", "Bolt"],
        paths=[("Kitchen", "Tea"), ("Kitchen",), (), ("Kitchen", "Pots"), ("Kitchen", "Pots")],
        price=np.array([3.5, np.nan, 1.0, 20.0, 2.0]),
        stock=np.array([5, -1, 0, 2, -1]),
        created_at=np.array([1.0e9, np.nan, 1.1e9, 1.2e9, 1.3e9]),
        in_catalogue=np.array([True, True, False, True, True]),
    )


def fitted() -> dict:
    return {name: get_model(name).fit(data()) for name in ("pop", "trending", "covisit", "als")}


class Unsaveable(Trending):
    """Fault injection: a model whose state cannot be written (a full disk, say)."""

    def _save_state(self, path: Path) -> None:
        (path / "half.npz").write_bytes(b"\0" * 10)
        raise OSError(28, "No space left on device")


def test_write_then_load_gives_identical_scores_columns_vectors_and_histories(
    tmp_path: Path,
) -> None:
    models = fitted()
    vectors = np.array([[3, 4], [0, 0], [1, 0], [0, 2], [1, 1]], dtype=np.float32)
    bundles = BundleStore(tmp_path / "bundles")
    path = write_bundle(
        bundles,
        items=ITEMS,
        users=USERS,
        models=models,
        item_columns=columns(),
        item_vectors=vectors,
        histories=SEQS,
        max_history=3,
        manifest={"training_cutoff": "2026-01-01T00:00:00+00:00"},
    )
    assert bundles.current() == path
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["models"] == {n: f"models/{n}" for n in models}
    assert (manifest["n_items"], manifest["n_users"]) == (5, 3)
    assert manifest["training_cutoff"] == "2026-01-01T00:00:00+00:00"

    bundle = load_bundle(path)
    assert bundle.version == path.name == manifest["version"]
    assert bundle.items == ITEMS and bundle.users == USERS
    assert sorted(bundle.models) == sorted(models)
    for name, model in models.items():
        assert type(bundle.models[name]) is type(model)
        np.testing.assert_array_equal(bundle.models[name].score(HISTORIES), model.score(HISTORIES))
        np.testing.assert_array_equal(
            bundle.models[name].similar_items(2, k=3)[0], model.similar_items(2, k=3)[0]
        )
    cols = bundle.item_columns
    assert cols.titles == ["Tea", "Cup", None, "Pot", "Lid"]
    assert cols.paths == [
        ("Kitchen", "Tea"),
        ("Kitchen",),
        (),
        ("Kitchen", "Pots"),
        ("Kitchen", "Pots"),
    ]
    assert cols.brands == ["Acme", None, None, "Acme", "Bolt"]
    np.testing.assert_array_equal(cols.price, [3.5, np.nan, 1.0, 20.0, 2.0])
    assert cols.stock.tolist() == [5, -1, 0, 2, -1]
    assert cols.in_catalogue.tolist() == [True, True, False, True, True]
    # rows scaled to unit length, the zero row stays zero
    np.testing.assert_allclose(
        bundle.item_vectors, [[0.6, 0.8], [0, 0], [1, 0], [0, 1], [0.70710677, 0.70710677]]
    )
    assert bundle.item_vectors.dtype == np.float32
    assert bundle.history("u1").tolist() == [1, 2, 1]  # the last max_history=3 items
    assert bundle.history("u3").tolist() == [0, 4]
    assert bundle.history("nobody").tolist() == []
    assert load_current(tmp_path / "bundles").version == bundle.version
    assert load_current(tmp_path / "nothing") is None


def test_a_failure_while_writing_leaves_the_previous_bundle_current(tmp_path: Path) -> None:
    bundles = BundleStore(tmp_path / "bundles")
    first = write_bundle(bundles, items=ITEMS, users=USERS, models=fitted(), item_columns=columns())
    broken = Unsaveable().fit(data())
    with pytest.raises(OSError, match="No space left"):
        write_bundle(
            bundles,
            items=ITEMS,
            users=USERS,
            models={**fitted(), "trending": broken},
            item_columns=columns(),
        )
    assert bundles.current() == first
    assert bundles.versions() == [first.name]
    assert [p.name for p in (tmp_path / "bundles").iterdir() if p.name.startswith(".")] == []
    assert sorted(load_bundle(first).models) == ["als", "covisit", "pop", "trending"]


def test_inconsistent_inputs_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    bundles = BundleStore(tmp_path / "bundles")
    small = get_model("pop").fit(InteractionData("s", USERS, IdMap(["a"]), [np.array([0])] * 3))
    with pytest.raises(ValueError, match="knows 1 items, the bundle 5"):
        write_bundle(
            bundles, items=ITEMS, users=USERS, models={"pop": small}, item_columns=columns()
        )
    with pytest.raises(ValueError, match="item_vectors has 2 rows"):
        write_bundle(
            bundles,
            items=ITEMS,
            users=USERS,
            models={},
            item_columns=columns(),
            item_vectors=np.ones((2, 3)),
        )
    assert bundles.versions() == []


def test_load_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="shopflow train"):
        load_bundle(tmp_path)
    bundles = BundleStore(tmp_path / "bundles")
    path = write_bundle(bundles, items=ITEMS, users=USERS, models=fitted(), item_columns=columns())
    (path / "items.parquet").unlink()
    with pytest.raises(BundleError, match=r"lacks items\.parquet: retrain"):
        load_bundle(path)
    with pytest.raises(NotFound, match="known models: als, bpr"):
        model_class("nope")
    assert model_class("sasrec").name == "sasrec"


def test_loading_imports_no_training_code_and_reports_its_time(tmp_path: Path) -> None:
    path = write_bundle(
        BundleStore(tmp_path / "b"),
        items=ITEMS,
        users=USERS,
        models=fitted(),
        item_columns=columns(),
    )
    code = (
        "import sys; from shopflow.models.bundle import load_bundle; "
        f"b = load_bundle({str(path)!r}); "
        "bad = [m for m in sys.modules if m.startswith(('shopflow.train', 'shopflow.commands', "
        "'shopflow.eval', 'shopflow.models.sasrec_train'))]; "
        "print(sorted(b.models), bad, b.load_seconds > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['als', 'covisit', 'pop', 'trending'] [] True"
