"""Benchmark loading: registry and errors on tiny files, counts and content of the real datasets,
and the popularity anchor of the published Beauty leave-one-out protocol."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shopflow import datasets
from shopflow.commands.datasets import app
from shopflow.errors import DatasetMissing, ImportFormatError, NotFound
from shopflow.eval.metrics import evaluate_topk
from shopflow.eval.split import leave_one_out
from tests.conftest import dataset_path

COUNTS = {  # users, items, interactions (from each dataset's README)
    "beauty": (22_363, 12_101, 198_502),
    "sports": (35_598, 18_357, 296_337),
    "scientific": (8_442, 4_385, 59_384),
    "taobao": (814, 55_233, 84_287),
}


def _root(name: str) -> Path:
    return dataset_path(datasets.resolve(name).folder).parent


# -- registry and errors (no real data needed) -----------------------------------------------------
def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as err:
        datasets.load("movielens", Path("/nowhere"))
    for name in datasets.DATASETS:
        assert name in str(err.value)
    assert "beauty" in str(err.value)


def test_missing_dataset_says_where_and_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetMissing) as err:
        datasets.load("beauty", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "amazon_beauty_s3rec") in msg and "Beauty.txt" in msg
    assert "SHOPFLOW_DATASETS_DIR" in msg
    monkeypatch.setenv("SHOPFLOW_DATASETS_DIR", str(tmp_path / "elsewhere"))
    assert datasets.default_root() == tmp_path / "elsewhere"
    with pytest.raises(DatasetMissing, match="elsewhere"):
        datasets.load("taobao")
    assert [i.present for i in datasets.list_datasets()] == [False] * len(datasets.DATASETS)


def test_s3rec_format_ids_and_order(tmp_path: Path) -> None:
    folder = tmp_path / "amazon_beauty_s3rec"
    folder.mkdir()
    (folder / "Beauty.txt").write_text("7 3 1\n2 2 3 5\n")  # users 7, 2; item ids 1, 2, 3, 5
    (folder / "Beauty_item2attributes.json").write_text('{"3": [9, 4], "5": [1]}')
    data = datasets.load("beauty", tmp_path)
    assert data.users.external_ids == ("7", "2")  # file line order
    assert data.items.external_ids == ("1", "2", "3", "5")  # ascending file id
    assert [s.tolist() for s in data.sequences] == [[2, 0], [1, 2, 3]]  # file order kept
    assert data.side.attributes == [[], [], [9, 4], [1]]
    assert data.timestamps is None
    assert [i.present for i in datasets.list_datasets(tmp_path)] == [True, False, False, False]


def test_taobao_format_sorts_by_time(tmp_path: Path) -> None:
    folder = tmp_path / "taobao_userbehavior_head"
    folder.mkdir()
    rows = ["9,100,1,pv,30", "9,200,2,buy,10", "9,100,3,cart,30", "4,300,1,fav,5"]
    (folder / "UserBehavior_head.csv").write_text("\n".join(rows) + "\n")
    data = datasets.load("taobao", tmp_path)
    assert data.users.external_ids == ("9", "4")  # first appearance
    assert data.items.external_ids == ("200", "100", "300")  # first appearance after the sort
    assert [s.tolist() for s in data.sequences] == [[0, 1, 1], [2]]
    assert data.timestamps is not None and data.event_types is not None
    assert [t.tolist() for t in data.timestamps] == [[10, 30, 30], [5]]
    # equal timestamps keep file order: pv before cart
    assert [k.tolist() for k in data.event_types] == [
        ["purchase", "view", "add_to_cart"],
        ["favorite"],
    ]
    assert data.side.categories == [["2"], ["1", "3"], ["1"]]
    (folder / "UserBehavior_head.csv").write_text("1,2,3,click,4\n")
    with pytest.raises(ImportFormatError, match="click"):
        datasets.load("taobao", tmp_path)


# -- the real datasets -----------------------------------------------------------------------------
@pytest.mark.dataset
@pytest.mark.parametrize("name", list(COUNTS))
def test_counts(name: str) -> None:
    root = _root(name)
    start = time.perf_counter()
    data = datasets.load(name, root)
    elapsed = time.perf_counter() - start
    assert (data.n_users, data.n_items, data.n_interactions) == COUNTS[name]
    assert data.name == datasets.resolve(name).name
    assert elapsed < 10, f"loading {name} took {elapsed:.1f}s"  # ~0.2-0.3 s on an idle core


@pytest.mark.dataset
def test_beauty_content() -> None:
    data = datasets.load("amazon_beauty_s3rec", _root("beauty"))
    # Beauty.txt starts "1 1 2 3 4 5" / "2 6 7 8 9 10 4 11"
    assert data.users.external_ids[:2] == ("1", "2")
    assert data.items.to_external(data.sequences[0]) == ["1", "2", "3", "4", "5"]
    assert data.items.to_external(data.sequences[1]) == ["6", "7", "8", "9", "10", "4", "11"]
    assert data.side.attributes is not None and len(data.side.attributes) == data.n_items
    assert data.side.attributes[data.items.index_of("4")] == [1, 2, 3]
    assert min(len(s) for s in data.sequences) >= 5


@pytest.mark.dataset
def test_sports_content() -> None:
    data = datasets.load("sports", _root("sports"))
    assert data.items.to_external(data.sequences[1][:9]) == [
        "9",
        "10",
        "11",
        "12",
        "13",
        "14",
        "15",
        "16",
        "1",
    ]
    assert data.side.attributes is not None
    assert data.side.attributes[data.items.index_of("1")] == [1, 2, 3, 4, 5, 6]


@pytest.mark.dataset
def test_scientific_matches_the_published_split() -> None:
    root = _root("scientific")
    data = datasets.load("scientific", root)
    assert data.side.text is not None and all(t for t in data.side.text)
    assert data.side.text[data.items.index_of("B0000223SI")].startswith("PORTER-CABLE 740000801")
    assert data.sequences[0].tolist() == list(range(14))  # test row 0: "0 1 ... 12" then 13
    split = leave_one_out(data)
    folder = root / "amazon_scientific_unisrec"
    for part, targets in (("valid", split.valid_targets), ("test", split.test_targets)):
        rows = np.loadtxt(
            folder / f"Scientific.{part}.inter", dtype=str, delimiter="\t", skiprows=1
        )
        assert rows[:, 0].astype(int).tolist() == split.users.tolist()
        assert rows[:, 2].astype(int).tolist() == targets.tolist()


@pytest.mark.dataset
def test_taobao_content() -> None:
    data = datasets.load("taobao", _root("taobao"))
    assert data.timestamps is not None and data.event_types is not None
    assert all(np.all(np.diff(t) >= 0) for t in data.timestamps)
    kinds, n = np.unique(np.concatenate(data.event_types).astype(str), return_counts=True)
    assert dict(zip(kinds.tolist(), n.tolist(), strict=True)) == {
        "view": 75_693,
        "add_to_cart": 4_494,
        "favorite": 2_351,
        "purchase": 1_749,
    }
    assert data.side.categories is not None
    assert len({c for cats in data.side.categories for c in cats}) == 2_911
    assert data.users.external_ids[0] == "1"


@pytest.mark.dataset
def test_cli_list_and_show(monkeypatch: pytest.MonkeyPatch) -> None:
    root = _root("taobao")
    monkeypatch.setenv("COLUMNS", "220")
    runner = CliRunner()
    result = runner.invoke(app, ["show", "taobao", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "84,287" in result.output and "purchase 1,749" in result.output
    result = runner.invoke(app, ["list", "--root", str(root), "--no-counts"])
    assert result.exit_code == 0 and "taobao_userbehavior_head" in result.output
    result = runner.invoke(app, ["show", "nope", "--root", str(root)])
    assert result.exit_code == 1 and "unknown dataset" in result.output


# -- the published anchor --------------------------------------------------------------------------
def _popularity_at_10(counts: np.ndarray, histories: list[np.ndarray], targets: np.ndarray) -> dict:
    """Most popular items not in the history, ties by lower item index; HR/NDCG@10 two ways."""
    n_items = len(counts)
    order = np.lexsort((np.arange(n_items), -counts))  # global popularity order
    pos = np.empty(n_items, dtype=np.int64)
    pos[order] = np.arange(n_items)
    lens = np.array([len(h) for h in histories])
    owner = np.repeat(np.arange(len(lens)), lens)
    flat_pos = pos[np.concatenate(histories)]
    # 1) rank of the target = its popularity position minus the history items ahead of it
    ahead = np.bincount(owner, weights=flat_pos < pos[targets][owner], minlength=len(lens))
    rank = pos[targets] - ahead
    # 2) the top-10 lists themselves, through evaluate_topk
    width = 10 + lens.max()
    seen = np.zeros((len(lens), width), dtype=bool)
    keep = flat_pos < width
    seen[owner[keep], flat_pos[keep]] = True
    recs = order[np.argsort(seen, axis=1, kind="stable")[:, :10]]
    out = evaluate_topk(recs, targets, ks=(10,), metrics=("hit_rate", "ndcg"))
    assert out["hit_rate@10"] == pytest.approx(np.mean(rank < 10))
    assert out["ndcg@10"] == pytest.approx(np.mean(np.where(rank < 10, 1 / np.log2(rank + 2), 0)))
    return out


@pytest.mark.dataset
def test_beauty_popularity_anchor() -> None:
    data = datasets.load("beauty", _root("beauty"))
    split = leave_one_out(data)
    # Popularity from the training interactions of the test step (every item but each user's test
    # item), the user's own history excluded from ranking.
    train = np.concatenate(split.train_with_validation().sequences)
    out = _popularity_at_10(
        np.bincount(train, minlength=data.n_items), split.test_histories, split.test_targets
    )
    assert out["ndcg@10"] == pytest.approx(0.0068, abs=0.0015)  # measured 0.006075
    assert out["hit_rate@10"] == pytest.approx(0.013460, abs=1e-6)
    # Counting every interaction, test items included (a leak), reproduces the published figures
    # HR@10 0.0152 / NDCG@10 0.0068, so the published popularity baseline apparently counted them.
    leaky = np.bincount(np.concatenate(data.sequences), minlength=data.n_items)
    out = _popularity_at_10(leaky, split.test_histories, split.test_targets)
    assert out["hit_rate@10"] == pytest.approx(0.0152, abs=1e-4)  # measured 0.015159
    assert out["ndcg@10"] == pytest.approx(0.0068, abs=1e-4)  # measured 0.006765
