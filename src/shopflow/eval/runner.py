"""The offline evaluation runner (DESIGN.md §6): split, tune on validation, refit, rank, score.

For each model :func:`evaluate` does exactly this (the report repeats it, :data:`TUNING_TEXT`):

1. **Split** the data: leave-one-out (last item = test target, the one before = validation target)
   or a time split (train before a cutoff, test after; repeats of items already in the user's
   history are dropped from the targets, since they cannot be hit).
2. **Tune** when the model has a grid (the ``tune`` argument, else ``tune_grid`` of its config class
   or of the model class): every combination is fitted on the training part and ranks for the
   *validation* targets only; the best NDCG@10 wins (the first in grid order on ties). Test targets
   are never looked at. Time split: the validation targets are the events of the last 20 % of the
   training time (a time split of the training part).
3. **Refit** the chosen settings on train + validation (``train_with_validation()``; time split:
   everything before the cutoff).
4. **Rank** every test user in batches against the whole catalogue with the user's own history
   excluded (full ranking), and compute accuracy at each K, beyond-accuracy and per-segment metrics.
5. **Measure** wall time and peak memory of the final fit and of scoring all test users.

Example
-------
>>> from shopflow.datasets import load                                    # doctest: +SKIP
>>> result = evaluate(load("beauty"), ["pop", "covisit"], ks=(5, 10, 20))  # doctest: +SKIP
>>> result.models[0].metrics["ndcg@10"]                                    # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.errors import NotFound
from shopflow.eval import segments as seg
from shopflow.eval.beyond import category_codes, item_counts
from shopflow.eval.measure import Cost, machine_info, measure, memory_text
from shopflow.eval.metrics import evaluate_topk, hit_ndcg_from_scores, mean_metric, ndcg_at_k
from shopflow.eval.ranking import PREDICTIONS_K, popularity_profile, rank_users, write_predictions
from shopflow.eval.split import leave_one_out, sampled_negatives, time_split
from shopflow.features.sequences import InteractionData
from shopflow.models.base import Recommender

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (label, done, total); a new label is a new task
ModelSpec = str | Recommender
PROTOCOLS = ("loo", "time")
TUNE_METRIC, TUNE_K = "ndcg", 10
RANKING_TEXT = (
    "Full ranking: each test user's target is ranked against every item of the catalogue, with "
    "the user's own history excluded (those items can be neither recommended nor hit); equal "
    "scores are broken by the lower item index. No sampled negatives in the headline numbers."
)
TUNING_TEXT = (
    "Hyper-parameters: each combination of the model's grid is fitted on the training part and "
    "ranks for the validation targets only; the best NDCG@10 wins (first in grid order on ties); "
    "test targets are never used. The chosen settings are then refitted on train + validation and "
    "ranked for the test targets. Models without a grid (or with --no-tune) use their defaults, "
    "fitted on train + validation."
)
PROTOCOL_TEXT = {
    "loo": (
        "Leave-one-out: per user (at least 3 items) the last item is the test target and the one "
        "before it the validation target; the test ranking uses everything before the test item."
    ),
    "time": (
        "Time split: events before the cutoff train, the later events of each user are that "
        "user's target set (items already in the user's history dropped); one top-K list per user "
        "from the history at the cutoff. Validation for tuning: the same split of the training "
        "part at its own 80 % time quantile."
    ),
}


# -- results ---------------------------------------------------------------------------------------
@dataclass
class ModelResult:
    """One model's evaluation: settings, tuning trials, metrics and costs."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    fit: Cost
    score: Cost
    tuning: dict[str, Any] | None = None
    sampled: dict[str, float] | None = None
    popularity_profile: list[float] = field(default_factory=list)


@dataclass
class EvalResult:
    """Everything a report needs; :meth:`to_dict` is the JSON that the CLI writes."""

    dataset: str
    protocol: str
    ks: tuple[int, ...]
    n_users: int
    n_items: int
    n_interactions: int
    n_eval_users: int
    models: list[ModelResult]
    target_popularity_profile: list[float]
    sampled_negatives: int | None = None
    time_cutoff: float | None = None
    predictions_path: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    machine: dict[str, Any] = field(default_factory=machine_info)
    texts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN stays NaN, as ``json`` writes it)."""
        return json.loads(json.dumps(asdict(self), default=str))


# -- models ----------------------------------------------------------------------------------------
def check_models(
    models: Sequence[ModelSpec], tune: dict[str, dict[str, list[Any]]] | None = None
) -> list[str]:
    """Names of ``models``; :class:`NotFound` (listing the known ones) for an unknown name, and
    ``ValueError`` for a ``tune`` grid of another model or of a setting the model lacks."""
    names = [_model_factory(m)[0] for m in models]
    _check_grids(tune or {}, models)
    return names


def _model_factory(spec: ModelSpec) -> tuple[str, Callable[..., Recommender], dict[str, list[Any]]]:
    """Name, ``make(**params)`` and the model's own tuning grid, for a name or an instance."""
    if isinstance(spec, Recommender):
        cls, base = type(spec), spec.config
        return spec.name, lambda **p: cls(base, **p), _own_grid(cls)
    from shopflow.models.registry import MODELS, get_model

    if spec not in MODELS:
        raise NotFound(f"unknown model {spec!r}; known models: {', '.join(MODELS)}")
    return spec, lambda **p: get_model(spec, **p), _own_grid(MODELS[spec])


def _check_grids(tune: dict[str, dict[str, list[Any]]], models: Sequence[ModelSpec]) -> None:
    """Every grid names an evaluated model and settings that model has (ValueError otherwise)."""
    classes = {}
    for spec in models:
        if isinstance(spec, Recommender):
            classes[spec.name] = type(spec)
        else:
            from shopflow.models.registry import MODELS

            classes[spec] = MODELS[spec]
    for name, grid in tune.items():
        if name not in classes:
            raise ValueError(f"a tuning grid names {name!r}, which is not among the models")
        cfg = classes[name].config_cls
        known = {f.name for f in fields(cfg)} if is_dataclass(cfg) else set()
        unknown = sorted(set(grid) - known)
        if unknown:
            raise ValueError(
                f"{name} has no setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        empty = sorted(k for k, v in grid.items() if not list(v))
        if empty:
            raise ValueError(f"the tuning grid of {name} gives no value for {', '.join(empty)}")


def _own_grid(cls: type[Recommender]) -> dict[str, list[Any]]:
    grid = getattr(cls.config_cls, "tune_grid", None) or getattr(cls, "tune_grid", None)
    return {k: list(v) for k, v in (grid or {}).items()}


def _params(model: Recommender) -> dict[str, Any]:
    return asdict(model.config) if is_dataclass(model.config) else {}


def _combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def reference_k(ks: Sequence[int]) -> int:
    """The K of single-K summaries (popularity profile, segments, plots): 10 if asked, else max."""
    return 10 if 10 in ks else max(ks)


# -- the runner ------------------------------------------------------------------------------------
@dataclass
class _Task:
    """What one protocol gives the runner: tuning and test histories / targets."""

    tune_train: InteractionData | None
    tune_histories: list[np.ndarray]
    tune_targets: Any
    final_train: InteractionData
    users: np.ndarray
    histories: list[np.ndarray]
    targets: Any  # 1-D int array (loo) or a list of arrays (time)
    segments: dict[str, np.ndarray]
    cutoff: float | None = None


def _loo_task(data: InteractionData) -> _Task:
    split = leave_one_out(data)
    final = split.train_with_validation()
    counts = item_counts(final)
    lengths = np.array([len(h) for h in split.test_histories])
    return _Task(
        split.train,
        split.valid_histories,
        split.valid_targets,
        final,
        split.users,
        split.test_histories,
        split.test_targets,
        {
            "history_length": seg.segment_users_by_history_length(lengths),
            "target_popularity": seg.segment_targets_by_item_popularity(counts, split.test_targets),
        },
    )


def _time_task(data: InteractionData, quantile: float) -> _Task:
    split = time_split(data, quantile=quantile, drop_repeats=True)
    inner: Any = None
    if any(len(t) for t in (split.train.timestamps or [])):
        inner = time_split(split.train, quantile=quantile, drop_repeats=True)
    lengths = np.array([len(h) for h in split.histories])
    return _Task(
        inner.train if inner is not None and len(inner.users) else None,
        inner.histories if inner is not None else [],
        inner.targets if inner is not None else [],
        split.train,
        split.users,
        split.histories,
        split.targets,
        {
            "history_length": seg.segment_users_by_history_length(lengths),
            "cold_user": seg.segment_cold_users(split.cold),
        },
        split.cutoff,
    )


def evaluate(
    data: InteractionData,
    models: Sequence[ModelSpec],
    protocol: str = "loo",
    ks: Sequence[int] = (5, 10, 20),
    tune: dict[str, dict[str, list[Any]]] | None = None,
    predictions_path: str | Path | None = None,
    progress: Progress | None = None,
    *,
    no_tune: bool = False,
    sampled: int | None = None,
    batch_size: int = 1024,
    time_quantile: float = 0.8,
) -> EvalResult:
    """Evaluate ``models`` on ``data`` under ``protocol``; see the module docstring for each step.

    Parameters
    ----------
    data
        Per-user sequences (time order); side data feeds diversity and brand exposure.
    models
        Registry names (``shopflow.models.registry.MODELS``) or unfitted :class:`Recommender`
        instances (their config is the base of every tuning combination).
    protocol
        ``"loo"`` (leave-one-out) or ``"time"`` (time split at the ``time_quantile`` of timestamps).
    ks
        Cut-offs of every ranking metric.
    tune
        ``{model name: {setting: [values]}}``, overriding the model's own ``tune_grid``.
    predictions_path
        JSON lines, one per (model, test user): ``model``, ``user_id``, ``items`` (top 100, the
        dataset's own ids) and ``target``, to recompute every accuracy metric independently.
    progress
        ``progress(label, done, total)``; each phase (tuning trial, fit, scoring) is one label.
    no_tune
        Use every model's defaults.
    sampled
        Also rank each leave-one-out target among this many sampled negatives (labelled
        ``sampled<n>_*``; never a headline).
    batch_size
        Test users scored at once.

    Returns
    -------
    EvalResult
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if sampled is not None and protocol != "loo":
        raise ValueError("sampled negatives need one target per user: use protocol 'loo'")
    ks = tuple(sorted({int(k) for k in ks}))
    check_models(models, tune)  # unknown names fail before any work
    factories = [_model_factory(m) for m in models]
    task = _loo_task(data) if protocol == "loo" else _time_task(data, time_quantile)
    if len(task.users) == 0:
        raise ValueError(f"{data.name}: no user can be evaluated under protocol {protocol!r}")
    width = max(max(ks), PREDICTIONS_K if predictions_path is not None else 0)
    counts = item_counts(task.final_train)
    candidates = None
    if sampled is not None:
        negs = sampled_negatives(data.n_items, task.histories, task.targets, n=sampled)
        candidates = np.column_stack([task.targets, negs])
    side = data.side
    extras: dict[str, Any] = {
        "n_items": data.n_items,
        "train_counts": counts,
        "item_categories": category_codes(side.categories) if side.categories else None,
        "item_brands": side.brand,
        "segments": task.segments,
    }
    report = progress or (lambda label, done, total: None)
    if predictions_path is not None:
        Path(predictions_path).parent.mkdir(parents=True, exist_ok=True)
        Path(predictions_path).write_text("")
    results = []
    for name, make, own_grid in factories:
        grid = {} if no_tune else (tune or {}).get(name, own_grid)
        tuning, chosen = _tune(name, make, grid, task, batch_size, report)
        label = f"{name}: fit"
        report(label, 0, 1)
        model = make(**chosen)
        with measure() as fit_cost:
            model.fit(task.final_train)
        report(label, 1, 1)
        label, done = f"{name}: score {len(task.users):,} users", [0]
        report(label, 0, len(task.users))

        def tick(n: int, label: str = label, done: list[int] = done) -> None:
            done[0] += n
            report(label, done[0], len(task.users))

        with measure() as score_cost:
            recs, cand_scores = rank_users(
                model, task.histories, width, batch_size, candidates, tick
            )
        metrics = evaluate_topk(recs, task.targets, ks, **extras)
        results.append(
            ModelResult(
                name=name,
                params=_params(model),
                metrics=metrics,
                fit=fit_cost[0],
                score=score_cost[0],
                tuning=tuning,
                sampled=_sampled_metrics(cand_scores, ks, sampled),
                popularity_profile=popularity_profile(recs[:, : reference_k(ks)], counts),
            )
        )
        if predictions_path is not None:
            write_predictions(predictions_path, name, data, task.users, recs, task.targets)
        log.info("%s: ndcg@10 %.5f", name, metrics.get("ndcg@10", float("nan")))
    flat_targets = (
        task.targets if protocol == "loo" else np.concatenate([*task.targets, np.empty(0, int)])
    )
    return EvalResult(
        dataset=data.name,
        protocol=protocol,
        ks=ks,
        n_users=data.n_users,
        n_items=data.n_items,
        n_interactions=data.n_interactions,
        n_eval_users=len(task.users),
        models=results,
        target_popularity_profile=popularity_profile(flat_targets, counts),
        sampled_negatives=sampled,
        time_cutoff=task.cutoff,
        predictions_path=str(predictions_path) if predictions_path is not None else None,
        texts={
            "protocol": PROTOCOL_TEXT[protocol],
            "ranking": RANKING_TEXT,
            "tuning": TUNING_TEXT,
            "memory": memory_text(),
        },
    )


def _tune(
    name: str,
    make: Callable[..., Recommender],
    grid: dict[str, list[Any]],
    task: _Task,
    batch_size: int,
    report: Progress,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Fit each grid combination on the tuning train part, score it on the validation targets."""
    combos = _combinations(grid) if grid else []
    if not combos or task.tune_train is None or len(task.tune_histories) == 0:
        return None, {}
    trials: list[dict[str, Any]] = []
    values: list[float] = []
    label = f"{name}: tune {len(combos)} settings on validation"
    for i, params in enumerate(combos):
        report(label, i, len(combos))
        t0 = time.perf_counter()
        model = make(**params).fit(task.tune_train)
        recs, _ = rank_users(model, task.tune_histories, TUNE_K, batch_size)
        value = mean_metric(ndcg_at_k(recs, task.tune_targets, TUNE_K))
        trials.append({"params": params, "ndcg@10": value, "seconds": time.perf_counter() - t0})
        values.append(-1.0 if np.isnan(value) else value)
    report(label, len(combos), len(combos))
    chosen: dict[str, Any] = combos[int(np.argmax(values))]  # the first of equal best values
    return {
        "grid": grid,
        "selected_by": "ndcg@10 on validation targets",
        "trials": trials,
        "chosen": chosen,
    }, chosen


def _sampled_metrics(
    cand_scores: np.ndarray | None, ks: Sequence[int], n: int | None
) -> dict[str, float] | None:
    if cand_scores is None:
        return None
    zeros = np.zeros(len(cand_scores), dtype=np.int64)
    out = {}
    for k in ks:
        hr, ndcg = hit_ndcg_from_scores(cand_scores, zeros, k, ties="expected")
        out[f"sampled{n}_hit_rate@{k}"] = float(hr.mean())
        out[f"sampled{n}_ndcg@{k}"] = float(ndcg.mean())
    return out
