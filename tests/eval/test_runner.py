"""The evaluation runner on tiny data with known answers: planted pattern, tuning isolation,
predictions round trip, sampled negatives, time split, cost measurement."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from shopflow.errors import NotFound
from shopflow.eval.measure import measure
from shopflow.eval.ranking import popularity_profile
from shopflow.eval.runner import evaluate
from shopflow.eval.split import leave_one_out
from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender
from shopflow.models.popular import Popular
from shopflow.store.idmap import IdMap


# -- tiny models -----------------------------------------------------------------------------------
class _Stateless(Recommender):
    def _save_state(self, path: Path) -> None:  # pragma: no cover - not used here
        pass

    def _load_state(self, path: Path) -> None:  # pragma: no cover
        pass


class NextItem(_Stateless):
    """Most frequent successor of the last history item in training."""

    name = "nextitem"

    def _fit(self, data: InteractionData) -> None:
        self.trans = np.zeros((data.n_items, data.n_items), dtype=np.float32)
        for s in data.sequences:
            np.add.at(self.trans, (s[:-1], s[1:]), 1.0)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for row, h in enumerate(histories):
            if len(h):
                out[row] = self.trans[h[-1]]
        return out


@dataclass
class OracleConfig(ModelConfig):
    answer: str = "valid"  # which item of the user's full sequence it puts first
    tune_grid: ClassVar[dict[str, list[str]]] = {"answer": ["test", "valid"]}


class Oracle(_Stateless):
    """A spy that knows every full sequence; records what it was fitted on and asked to score."""

    name = "oracle"
    config_cls = OracleConfig
    config: OracleConfig
    truth: ClassVar[dict[int, np.ndarray]] = {}  # first item → full sequence
    calls: ClassVar[list[tuple[str, str, list[np.ndarray]]]] = []

    def _fit(self, data: InteractionData) -> None:
        Oracle.calls.append(("fit", self.config.answer, [s.copy() for s in data.sequences]))

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        Oracle.calls.append(("score", self.config.answer, [h.copy() for h in histories]))
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for row, h in enumerate(histories):
            full = Oracle.truth[int(h[0])]
            out[row, full[-2] if self.config.answer == "valid" else full[-1]] = 1.0
        return out


# -- data ------------------------------------------------------------------------------------------
def cyclic() -> InteractionData:
    """6 users, 6 items, rule i → i+1 (mod 6): user u has [u, u+1, u+2, u+3] (mod 6)."""
    seqs = [np.array([(u + j) % 6 for j in range(4)], dtype=np.int64) for u in range(6)]
    return InteractionData(
        "cyclic", IdMap([f"u{u}" for u in range(6)]), IdMap([f"i{i}" for i in range(6)]), seqs
    )


def random_data(n_users: int = 60, n_items: int = 40, seed: int = 1) -> InteractionData:
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        start = int(rng.integers(n_items))
        seq = [start]
        for _ in range(int(rng.integers(3, 12))):  # mostly i → i+1, sometimes a jump
            seq.append(
                (seq[-1] + 1) % n_items if rng.random() < 0.7 else int(rng.integers(n_items))
            )
        seqs.append(np.array(seq, dtype=np.int64))
    return InteractionData(
        "random",
        IdMap([f"user{u}" for u in range(n_users)]),
        IdMap([f"item{i}" for i in range(n_items)]),
        seqs,
    )


# -- tests -----------------------------------------------------------------------------------------
def test_planted_pattern_known_answers() -> None:
    result = evaluate(cyclic(), [NextItem(), Popular()], ks=(1, 2, 3))
    nxt, pop = result.models
    assert result.n_eval_users == 6
    assert nxt.metrics["hit_rate@1"] == 1.0 and nxt.metrics["ndcg@3"] == 1.0
    # Popularity: every item has 3 training interactions (train + validation), so the ranking is
    # the 3 items outside the history in index order; the targets land at ranks 1, 2, 3, 1, 1, 1.
    assert pop.metrics["hit_rate@1"] == pytest.approx(4 / 6)
    assert pop.metrics["hit_rate@2"] == pytest.approx(5 / 6)
    assert pop.metrics["hit_rate@3"] == pytest.approx(1.0)
    assert pop.metrics["ndcg@3"] == pytest.approx((4 + 1 / math.log2(3) + 1 / math.log2(4)) / 6)
    assert pop.metrics["mrr@3"] == pytest.approx((4 + 1 / 2 + 1 / 3) / 6)
    # beyond accuracy and segments are there, with every user in one segment
    assert pop.metrics["coverage@3"] == 1.0
    assert pop.metrics["segments"]["history_length"]["0-4"]["n"] == 6
    assert pop.metrics["segments"]["target_popularity"]["1-9"]["hit_rate@1"] == pytest.approx(4 / 6)
    assert "own history excluded" in result.texts["ranking"]
    assert nxt.fit.seconds >= 0 and nxt.score.peak_mb > 0


def test_tuning_never_sees_test_targets() -> None:
    data = cyclic()
    split = leave_one_out(data)
    Oracle.truth = {int(s[0]): s for s in data.sequences}
    Oracle.calls = []
    result = evaluate(data, [Oracle()], ks=(1,))
    (res,) = result.models
    # On validation "valid" is perfect and "test" scores 0; a runner that peeked at the test
    # targets would have picked "test".
    assert res.tuning is not None and res.tuning["chosen"] == {"answer": "valid"}
    test_trial, valid_trial = (t["ndcg@10"] for t in res.tuning["trials"])
    assert valid_trial == 1.0 and test_trial < 0.6
    assert res.params["answer"] == "valid"
    fits = [c for c in Oracle.calls if c[0] == "fit"]
    assert len(fits) == 3  # two tuning fits, one final refit
    for _, _, seqs in fits[:2]:  # tuning fits: training part only
        assert [s.tolist() for s in seqs] == [s.tolist() for s in split.train.sequences]
    final = [s.tolist() for s in fits[2][2]]
    assert final == [s.tolist() for s in split.train_with_validation().sequences]
    scores = [c for c in Oracle.calls if c[0] == "score"]
    assert len(scores) == 3
    for _, _, histories in scores[:2]:  # tuning: the validation histories, nothing else
        assert [h.tolist() for h in histories] == [h.tolist() for h in split.valid_histories]
    assert [h.tolist() for h in scores[2][2]] == [h.tolist() for h in split.test_histories]


def test_tune_argument_overrides_grid_and_no_tune_uses_defaults() -> None:
    data = cyclic()
    Oracle.truth = {int(s[0]): s for s in data.sequences}
    res = evaluate(data, [Oracle()], ks=(1,), tune={"oracle": {"answer": ["test"]}}).models[0]
    assert res.tuning is not None and res.params["answer"] == "test"
    res = evaluate(data, [Oracle(answer="test")], ks=(1,), no_tune=True).models[0]
    assert res.tuning is None and res.params["answer"] == "test"
    assert res.metrics["hit_rate@1"] == 1.0


def _recompute(lines: list[dict[str, Any]], k: int) -> tuple[float, float]:
    hr, ndcg = [], []
    for line in lines:
        targets = line["target"] if isinstance(line["target"], list) else [line["target"]]
        top = line["items"][:k]
        hits = [r for r, item in enumerate(top) if item in set(targets)]
        hr.append(1.0 if hits else 0.0)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(len(set(targets)), k)))
        ndcg.append(sum(1 / math.log2(r + 2) for r in hits) / ideal)
    return float(np.mean(hr)), float(np.mean(ndcg))


def test_predictions_file_round_trip(tmp_path: Path) -> None:
    data = random_data()
    path = tmp_path / "pred.jsonl"
    result = evaluate(data, [Popular(), NextItem()], ks=(5, 10, 20), predictions_path=path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    split = leave_one_out(data)
    for m in result.models:
        mine = [x for x in lines if x["model"] == m.name]
        assert len(mine) == len(split.users)
        assert mine[0]["user_id"] == data.users.external_ids[split.users[0]]
        assert mine[0]["target"] == data.items.external_ids[split.test_targets[0]]
        assert all(
            len(x["items"]) == data.n_items - len(set(h.tolist()))
            for x, h in zip(mine, split.test_histories, strict=True)
        )  # all unseen items (< 100)
        for k in (5, 10, 20):
            hr, ndcg = _recompute(mine, k)
            assert hr == pytest.approx(m.metrics[f"hit_rate@{k}"], abs=1e-12)
            assert ndcg == pytest.approx(m.metrics[f"ndcg@{k}"], abs=1e-12)


def test_time_split_set_targets_and_cold_users(tmp_path: Path) -> None:
    data = random_data(n_users=30, n_items=25, seed=3)
    rng = np.random.default_rng(0)
    ts = [np.sort(rng.uniform(0, 100, len(s))) for s in data.sequences]
    data = data.with_sequences(data.sequences, timestamps=ts)
    path = tmp_path / "pred.jsonl"
    result = evaluate(data, [Popular(), NextItem()], "time", ks=(5, 10), predictions_path=path)
    assert result.protocol == "time" and result.time_cutoff is not None
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for m in result.models:
        mine = [x for x in lines if x["model"] == m.name]
        assert all(isinstance(x["target"], list) for x in mine)
        assert _recompute(mine, 10) == pytest.approx(
            (m.metrics["hit_rate@10"], m.metrics["ndcg@10"]), abs=1e-12
        )
        assert set(m.metrics["segments"]) == {"history_length", "cold_user"}


def test_sampled_negatives_are_labelled_and_hand_checked() -> None:
    result = evaluate(cyclic(), [NextItem(), Popular()], ks=(1,), sampled=2)
    nxt, pop = result.models
    assert result.sampled_negatives == 2
    assert nxt.sampled == {"sampled2_hit_rate@1": 1.0, "sampled2_ndcg@1": 1.0}
    # popularity ties the target with both negatives: expected HR@1 = 1/3
    assert pop.sampled is not None and pop.sampled["sampled2_hit_rate@1"] == pytest.approx(1 / 3)
    assert "sampled2_hit_rate@1" not in pop.metrics  # never mixed into the headline metrics
    with pytest.raises(ValueError, match="loo"):
        evaluate(cyclic(), [Popular()], "time", sampled=2)


def test_unknown_names_fail_with_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"known models: .*pop"):
        evaluate(cyclic(), ["no-such-model"])
    with pytest.raises(ValueError, match="known: loo, time"):
        evaluate(cyclic(), [Popular()], protocol="random")


def test_measure_sees_a_large_allocation() -> None:
    with measure() as cost:
        block = np.ones(20_000_000, dtype=np.float64)  # 153 MiB, touched
        block[::512] = 2.0
        del block
    assert cost[0].above_start_mb > 120
    assert cost[0].seconds > 0 and cost[0].cpu_seconds > 0


def test_popularity_profile() -> None:
    # most popular first: items 2, 9, 0, 4, 5, 8, 1, 3, 6, 7; ten items, so one item per decile
    counts = np.array([5, 1, 9, 0, 3, 3, 0, 0, 2, 7])
    assert popularity_profile(np.array([[2, 9], [0, -1]]), counts) == pytest.approx(
        [1 / 3, 1 / 3, 1 / 3] + [0.0] * 7
    )
    assert popularity_profile(np.array([3, 6, 7]), counts)[7:] == pytest.approx([1 / 3] * 3)
