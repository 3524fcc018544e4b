"""Cold-item protocol: items held out of training entirely, then ranked as test targets.

How well can a model recommend an item nobody interacted with before it was trained? Only side
information (brand, category, attribute tokens, item text) can place such an item; this module
measures it.

Protocol (:func:`cold_item_split`, then :func:`evaluate_cold`)
-------------------------------------------------------------
1. **Cold items.** A seeded uniform random set of items, ``fraction`` of the catalogue (default
   10 %, ``round(fraction * n_items)`` items, at least one), or a given set.
2. **Test cases: leave-one-out.** Every user with at least ``min_len`` items (default 2) is one
   test case: the target is the user's last item, the history everything before it, in order.
   A case is *cold* when its target is a cold item, *warm* otherwise. Both are reported: cold is
   the figure of interest, warm the contrast (the same model, the same ranking).
3. **Training data.** Every sequence without its last item (users too short to test keep their
   whole sequence), and then **without every event on a cold item** (the neighbours of a dropped
   event become adjacent). No cold item occurs anywhere in training, and the test items never do.
   Models that early-stop (SASRec) validate on the last item of these training sequences, which is
   always warm: no cold item is ever seen while choosing anything.
4. **Histories keep their cold items.** A test history is what the user did, cold items included:
   at serving time a user who touched a new item has that event in their history, so the model
   must encode items it never trained on as inputs too (from their side information). Dropping
   them would also let a cold item the user already has be recommended again, or be the target
   of a case its history already contains.
5. **Full ranking.** Each case scores the whole catalogue, warm and cold items together; the
   items of the history are excluded (they can be neither recommended nor hit). No sampled
   negatives.
6. **Metrics.** HR@K and NDCG@K (K = 10 by default) from the scores with
   :func:`shopflow.eval.metrics.hit_ndcg_from_scores` under the ``expected`` tie rule: a target
   tied with other items gets the exact mean over a random order of the tie. This matters here: a
   model with no way to tell cold items apart scores them all alike (all 0), and a lower-index tie
   rule would credit it with luck. Means over the cases, with their standard errors.
   :func:`chance_level` gives the exact expectation of a uniformly random ranking.

Models must see the training data only: fit on ``split.train`` (full catalogue, cold items have no
events), or, for models whose loss treats every catalogue item as a negative (SASRec's full
softmax would learn "never predict these items" for the cold rows), on
:meth:`ColdItemSplit.warm_catalogue` and then add the cold items as new items
(:mod:`shopflow.eval.cold_sasrec`).

Example
-------
>>> import numpy as np
>>> from shopflow.features.sequences import InteractionData
>>> from shopflow.store.idmap import IdMap
>>> d = InteractionData("toy", IdMap(["u", "v"]), IdMap(list("abcde")),
...                     [np.array([0, 4, 1, 2]), np.array([1, 3, 4])])
>>> s = cold_item_split(d, cold_items=[4])
>>> [t.tolist() for t in s.train.sequences], s.targets.tolist(), s.is_cold.tolist()
([[0, 1], [1, 3]], [2, 4], [False, True])
>>> s.histories[0].tolist()  # histories keep their cold items
[0, 4, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shopflow.eval.metrics import hit_ndcg_from_scores
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.base import Recommender, mask_seen
from shopflow.store.idmap import IdMap

COLD_PROTOCOL = (
    "cold items: a seeded random {fraction:.0%} of the catalogue is removed from training "
    "entirely (every event on it dropped); leave-one-out test cases (last item = target, "
    "history = everything before it, cold items kept); full ranking over every item, the "
    "history excluded; HR/NDCG@{k} with ties at their expected rank; cold targets = cases whose "
    "target is a held-out item, warm targets = the rest"
)


@dataclass(frozen=True)
class ColdItemSplit:
    """Training data without the cold items, and leave-one-out test cases split cold / warm.

    Attributes
    ----------
    train
        Same users, items (full catalogue) and side data as the input; each sequence without its
        last item (when the user is tested) and without any event on a cold item.
    cold_items
        Dense ids of the held-out items, ascending (int64).
    users
        Dense ids of the tested users, ascending; the arrays below are aligned with it.
    histories
        Per case: every item before the target, in order, cold items included.
    targets
        Per case: the user's last item (int64).
    is_cold
        Per case: whether the target is a cold item (bool).
    """

    train: InteractionData
    cold_items: np.ndarray
    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray
    is_cold: np.ndarray
    fraction: float

    @property
    def warm_items(self) -> np.ndarray:
        """Dense ids of the items that stay in training, ascending (int64)."""
        keep = np.ones(self.train.n_items, dtype=bool)
        keep[self.cold_items] = False
        return np.flatnonzero(keep).astype(np.int64)

    def protocol(self, k: int = 10) -> str:
        return COLD_PROTOCOL.format(fraction=self.fraction, k=k)

    def warm_catalogue(self) -> tuple[InteractionData, np.ndarray]:
        """The training data over a catalogue of the warm items only, and the id map back.

        Returns ``(data, warm_items)``: item ``j`` of ``data`` is item ``warm_items[j]`` of the
        full catalogue; sequences, item ids and side data are restricted and renumbered. For models
        that must not see the cold items even as never-chosen candidates.
        """
        warm = self.warm_items
        new_id = np.full(self.train.n_items, -1, dtype=np.int64)
        new_id[warm] = np.arange(len(warm))
        seqs = [new_id[s] for s in self.train.sequences]
        ext = self.train.items.external_ids
        data = replace(
            self.train,
            items=IdMap([ext[i] for i in warm]),
            sequences=seqs,
            side=subset_side(self.train.side, warm),
        )
        return data, warm


def subset_side(side: ItemSide, items: np.ndarray) -> ItemSide:
    """Side data of ``items`` only, in that order (lists and arrays alike; None stays None)."""
    values: dict[str, Any] = {}
    for f in fields(side):
        value = getattr(side, f.name)
        if value is None:
            values[f.name] = None
        elif isinstance(value, np.ndarray):
            values[f.name] = value[items]
        else:
            values[f.name] = [value[i] for i in items.tolist()]
    return ItemSide(**values)


def cold_item_split(
    data: InteractionData,
    fraction: float = 0.1,
    seed: int = 0,
    cold_items: Sequence[int] | np.ndarray | None = None,
    min_len: int = 2,
) -> ColdItemSplit:
    """Hold out items from training and build the leave-one-out test cases (see module doc).

    Parameters
    ----------
    data
        Per-user sequences in time order.
    fraction, seed
        Share of the catalogue to hold out, drawn uniformly without replacement with
        ``numpy.random.default_rng(seed)``.
    cold_items
        The held-out items instead of a random draw (dense ids).
    min_len
        Users with fewer items keep their whole (cold-free) sequence in training and are not
        tested; at least 2 (one history item and the target).
    """
    if min_len < 2:
        raise ValueError(f"min_len must be at least 2 (a history item and a target), got {min_len}")
    n = data.n_items
    if cold_items is None:
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
        size = min(n - 1, max(1, round(fraction * n)))
        cold = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    else:
        cold = np.unique(np.asarray(cold_items, dtype=np.int64))
        if len(cold) == 0 or cold[0] < 0 or cold[-1] >= n:
            raise ValueError(f"cold_items must be a non-empty set of item ids in [0, {n})")
        fraction = len(cold) / n
    is_cold_item = np.zeros(n, dtype=bool)
    is_cold_item[cold] = True
    lengths = np.fromiter((len(s) for s in data.sequences), dtype=np.int64, count=data.n_users)
    tested = lengths >= min_len

    def cut(arrays: list[np.ndarray] | None) -> list[np.ndarray] | None:
        if arrays is None:
            return None
        out = []
        for seq, a, t in zip(data.sequences, arrays, tested, strict=True):
            keep = ~is_cold_item[np.asarray(seq, dtype=np.int64)]
            if t:
                keep[-1] = False
            out.append(a[keep])
        return out

    train_seqs = cut(data.sequences)
    assert train_seqs is not None
    train = data.with_sequences(train_seqs, cut(data.timestamps), cut(data.event_types))
    users = np.flatnonzero(tested).astype(np.int64)
    targets = np.array([data.sequences[u][-1] for u in users], dtype=np.int64)
    return ColdItemSplit(
        train=train,
        cold_items=cold.astype(np.int64),
        users=users,
        histories=[np.asarray(data.sequences[u][:-1], dtype=np.int64) for u in users],
        targets=targets,
        is_cold=is_cold_item[targets],
        fraction=float(fraction),
    )


def score_cases(
    model: Recommender,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    k: int = 10,
    batch_size: int = 1024,
    ties: str = "expected",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-case HR@k and NDCG@k, full ranking with the history excluded → two float64 (n,)."""
    hr = np.zeros(len(histories), dtype=np.float64)
    ndcg = np.zeros(len(histories), dtype=np.float64)
    bar = tqdm(total=len(histories), desc=f"rank {model.name}", disable=not progress, unit="case")
    for lo in range(0, len(histories), batch_size):
        batch = histories[lo : lo + batch_size]
        scores = model.score(batch)  # (B, n_items)
        mask_seen(scores, batch)
        h, g = hit_ndcg_from_scores(scores, targets[lo : lo + len(batch)], k, ties)
        hr[lo : lo + len(batch)], ndcg[lo : lo + len(batch)] = h, g
        bar.update(len(batch))
    bar.close()
    return hr, ndcg


def summarise(hr: np.ndarray, ndcg: np.ndarray, k: int = 10) -> dict[str, float | int]:
    """Number of cases, means and standard errors of the means (NaN when there are no cases)."""
    n = len(hr)

    def se(x: np.ndarray) -> float:
        return float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    return {
        "n": int(n),
        f"hr@{k}": float(hr.mean()) if n else float("nan"),
        f"ndcg@{k}": float(ndcg.mean()) if n else float("nan"),
        f"hr@{k}_se": se(hr),
        f"ndcg@{k}_se": se(ndcg),
    }


def evaluate_cold(
    model: Recommender,
    split: ColdItemSplit,
    k: int = 10,
    batch_size: int = 1024,
    progress: bool = False,
) -> dict[str, dict[str, float | int]]:
    """HR@k / NDCG@k of ``model`` (over the full catalogue) on the cold and on the warm cases.

    Returns ``{"cold": summary, "warm": summary}``, each as :func:`summarise` gives it.
    """
    if model.n_items != split.train.n_items:
        raise ValueError(
            f"{model.name} scores {model.n_items} items but the catalogue has "
            f"{split.train.n_items}: rank the full catalogue, cold items included"
        )
    hr, ndcg = score_cases(model, split.histories, split.targets, k, batch_size, progress=progress)
    cold = split.is_cold
    return {
        "cold": summarise(hr[cold], ndcg[cold], k),
        "warm": summarise(hr[~cold], ndcg[~cold], k),
    }


def chance_level(split: ColdItemSplit, k: int = 10) -> dict[str, dict[str, float | int]]:
    """Exact HR@k / NDCG@k of a uniformly random ranking of the items outside each history.

    A case with ``m`` candidate items (catalogue minus the distinct history items) hits with
    probability ``min(k, m) / m`` at each rank ``< k`` equally; a target inside its own history
    never hits. Same shape as :func:`evaluate_cold`'s result.
    """
    n = split.train.n_items
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # (k,)
    cum = np.concatenate([[0.0], np.cumsum(disc)])
    hr = np.zeros(len(split.targets))
    ndcg = np.zeros(len(split.targets))
    for row, (hist, target) in enumerate(zip(split.histories, split.targets, strict=True)):
        seen = np.unique(hist)
        if np.isin(target, seen):
            continue
        m = n - len(seen)
        hr[row] = min(k, m) / m
        ndcg[row] = cum[min(k, m)] / m
    cold = split.is_cold
    return {
        "cold": summarise(hr[cold], ndcg[cold], k),
        "warm": summarise(hr[~cold], ndcg[~cold], k),
    }
