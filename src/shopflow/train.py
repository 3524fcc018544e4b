"""``shopflow train`` without the command line: the store's events and catalogue → one model bundle.

:func:`train_bundle` reads the event log (up to an optional cutoff) and the whole catalogue, so
every catalogue item has a dense id even before anyone saw it; fits the cheap models; embeds
item texts (``TextEncoder``, cached by content hash under ``<data_dir>/cache``: a retrain encodes
only new or changed items); fits ``content`` and then the torch models within what is left of the
time budget; checks each model offline on held-out validation items; and writes the bundle
atomically (:func:`shopflow.models.bundle.write_bundle`). A model that fails is logged and left
out. No framework here: the CLI draws progress through the ``progress`` callback.

The offline check is leave-one-out on the training data (``eval.split.leave_one_out``): a second
copy of each model is fitted on every user's sequence without its last two items and ranks the whole
catalogue (own history excluded) for the second-to-last item, for a sample of users. The bundle's
models themselves are fitted on everything before the cutoff; nothing after it is read.

This module runs the steps. What they read (events, catalogue, item text vectors) comes from
:mod:`shopflow.train_data`, and the torch models' time caps and thread counts from
:mod:`shopflow.train_budget`. Their public names can be imported from here too.

Example
-------
>>> path = train_bundle(store, settings, models=("trending", "covisit"))   # doctest: +SKIP
>>> json.loads((path / "manifest.json").read_text())["metrics"]["models"]    # doctest: +SKIP
{'trending': {'hr@10': 0.05, 'ndcg@10': 0.02}, 'covisit': {'hr@10': 0.21, 'ndcg@10': 0.11}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.config import Settings
from shopflow.eval.split import LOO_PROTOCOL, leave_one_out
from shopflow.features.sequences import InteractionData
from shopflow.models.base import Recommender
from shopflow.models.bundle import ItemColumns, model_class, write_bundle
from shopflow.store.bundles import BundleStore
from shopflow.store.store import Store
from shopflow.train_budget import (  # re-exported: callers import from either module
    cap_training,
    epoch_seconds,
    torch_threads,
)
from shopflow.train_data import (  # re-exported: callers import from either module
    NoEvents,
    item_vectors,
    load_training_data,
    needs_training,
    parse_cutoff,
    store_fingerprint,
)

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("trending", "covisit", "als", "content", "sasrec")
TEXT_MODELS = frozenset({"content"})  # fitted once the item text vectors are there
TORCH_MODELS = frozenset({"sasrec"})  # fitted last, capped to what is left of the time budget
TEXT_SHARE = 0.6  # of the budget left after the cheap models, when a torch model follows
# Bundle defaults on top of each model's own config (the caller's overrides win).
BUNDLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "als": {"factors": 64},  # the registry default (256) is tuned for Beauty-sized data
    "sasrec": {"epochs": 40, "patience": 3, "max_val_users": 500, "side_tokens": True},
}
FEATURES = ["event_types", "timestamps", "item_text", "brand", "categories", "price", "created_at"]
EVAL_K = 10
STATUSES = ("fitted", "skipped", "failed")
Progress = Callable[["StepReport"], None]

__all__ = [
    "BUNDLE_DEFAULTS",
    "DEFAULT_MODELS",
    "EVAL_K",
    "FEATURES",
    "STATUSES",
    "TEXT_MODELS",
    "TEXT_SHARE",
    "TORCH_MODELS",
    "NoEvents",
    "Progress",
    "StepReport",
    "cap_training",
    "epoch_seconds",
    "item_vectors",
    "load_training_data",
    "make_model",
    "needs_training",
    "parse_cutoff",
    "store_fingerprint",
    "torch_threads",
    "train_bundle",
    "validation_metrics",
]


@dataclass
class StepReport:
    """One step (``data``, ``text``, a model name, ``write``) as the progress callback sees it.

    ``status``: ``running`` when it starts; then ``done``, or for a model ``fitted``, ``skipped``
    or ``failed`` (``detail`` says why), with its validation ``metrics``.
    """

    name: str
    status: str
    seconds: float = 0.0
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


# -- models ----------------------------------------------------------------------------------------
def make_model(
    name: str, settings: Settings, overrides: Mapping[str, Any] | None = None
) -> Recommender:
    """A fresh model with the bundle defaults, the settings' event weights and text cache (where the
    model has such settings) and ``overrides`` on top; unknown names and settings raise."""
    cls = model_class(name)
    known = {f.name for f in fields(cls.config_cls)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise TypeError(f"{name} has no setting {', '.join(unknown)}; known: {', '.join(known)}")
    params: dict[str, Any] = {
        "event_weights": dict(settings.event_weights),
        "cache_dir": str(settings.data_dir / "cache"),
        **BUNDLE_DEFAULTS.get(name, {}),
        **(overrides or {}),
    }
    return cls(**{k: v for k, v in params.items() if k in known})


def validation_metrics(
    model: Recommender, histories: Sequence[np.ndarray], targets: np.ndarray, k: int = EVAL_K
) -> dict[str, float]:
    """HR@k and NDCG@k of ``targets`` under full ranking, each history's own items excluded."""
    from shopflow.eval.metrics import hit_rate_at_k, mean_metric, ndcg_at_k
    from shopflow.eval.runner import rank_users

    recs, _ = rank_users(model, histories, k, batch_size=512)
    return {
        f"hr@{k}": mean_metric(hit_rate_at_k(recs, targets, k)),
        f"ndcg@{k}": mean_metric(ndcg_at_k(recs, targets, k)),
    }


# -- the whole run ---------------------------------------------------------------------------------
def train_bundle(
    store: Store,
    settings: Settings,
    models: Sequence[str] = DEFAULT_MODELS,
    cutoff: datetime | None = None,
    progress: Progress | None = None,
    time_budget_s: float | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    eval_users: int = 500,
    seed: int = 0,
    encoder: Any = None,
    text_vectors: bool = True,
    keep_bundles: int = 5,
    warm_start: Any = None,
) -> Path:
    """Fit ``models`` on the store's events before ``cutoff``, publish one bundle, return its path.

    Parameters
    ----------
    store, settings
        The event log and catalogue; the data dir (bundles, text cache) and event weights.
    models
        Registry names. A model that raises while fitting is logged and left out; the manifest lists
        what the bundle holds (``models``), what was ``skipped`` or ``failed``, and why.
    cutoff
        Train on events strictly before this time (default: all of them).
    progress
        Called with a :class:`StepReport` when each step starts and when it ends.
    time_budget_s
        Wall-clock budget from the start. The cheap models (trending, covisit, als, ...) come first
        and are always fitted; item texts are then encoded, cold items first, until ``TEXT_SHARE``
        of what is left is spent when a torch model follows (the rest keeps zero vectors until the
        next run; the cache keeps what was done); then ``content``; then each torch model, capped
        to half of what is left (the other half for its offline check), or skipped with the reason
        when one epoch would not fit.
    overrides
        Per-model config overrides, e.g. ``{"sasrec": {"epochs": 1}}``.
    eval_users
        Users sampled for the offline check (0: no check).
    encoder
        Text encoder (default: ``TextEncoder`` cached under ``<data_dir>/cache``).
    text_vectors
        Embed item texts (content similarity, search, cold items); always on for ``content``.
    keep_bundles
        Older bundles beyond the newest ``keep_bundles`` are removed once the new one is current.
    warm_start
        A ``train_update.WarmStart``: sasrec is fine-tuned from that bundle's instead of trained.

    Raises
    ------
    NoEvents
        The store has no event before the cutoff.
    """
    run = _Run(settings, overrides or {}, progress or (lambda r: None), time_budget_s)
    run.warm = warm_start
    names = list(dict.fromkeys(models))
    embed = text_vectors or bool(TEXT_MODELS & set(names))
    if embed and encoder is None:
        encoder = run.preload_encoder()  # loads while the data is read and the cheap models fit
    fingerprint = store_fingerprint(store)
    data, columns = run.step("data", lambda: load_training_data(store, cutoff))
    run.split(data, eval_users, seed)
    for name in names:
        if name not in TEXT_MODELS | TORCH_MODELS:
            run.fit(name, data)
    vectors, text_info = None, {}
    if embed:
        share = TEXT_SHARE if TORCH_MODELS & set(names) else 1.0
        vectors, text_info = run.step("text", lambda: run.texts(columns, data, encoder, share))
        # models embed only what was encoded (the cache has it); the rest waits for the next run
        done = set(text_info.pop("done"))
        texts = [t if i in done else None for i, t in enumerate(columns.texts)]
        data = replace(data, side=replace(data.side, text=texts))
    for name in [n for n in names if n in TEXT_MODELS] + [n for n in names if n in TORCH_MODELS]:
        run.fit(name, data)
    manifest = {
        "training_cutoff": cutoff.isoformat() if cutoff else data.meta["last_event"],
        "cutoff_requested": cutoff.isoformat() if cutoff else None,
        "store": fingerprint,
        "n_interactions": data.n_interactions,
        "features": FEATURES,
        "text": text_info,
        **run.summary(),
        "warm_start": run.warm_info,
        "settings": {
            "models": names,
            "event_weights": dict(settings.event_weights),
            "time_budget_s": time_budget_s,
            "eval_users": eval_users,
            "configs": {n: asdict(m.config) for n, m in run.fitted.items()},
        },
    }
    bundles = BundleStore(settings.data_dir / "bundles")
    path = run.step("write", lambda: write_bundle(
        bundles, items=data.items, users=data.users, models=run.fitted, item_columns=columns,
        item_vectors=vectors, histories=data.sequences, manifest=manifest))  # fmt: skip
    bundles.prune(keep=keep_bundles)  # never the current one
    log.info("bundle %s: %s in %.1f s", path.name, ", ".join(run.fitted) or "no models",
             time.perf_counter() - run.start)  # fmt: skip
    return path


@dataclass
class _Run:
    """One training run: the budget clock, the offline-check sample, fitted models, step reports."""

    settings: Settings
    overrides: Mapping[str, Mapping[str, Any]]
    report: Progress
    budget: float | None
    start: float = field(default_factory=time.perf_counter)
    fitted: dict[str, Recommender] = field(default_factory=dict)
    steps: dict[str, StepReport] = field(default_factory=dict)
    epoch_s: float = 0.0  # estimated seconds of one epoch of the torch model being fitted
    loading: Any = None  # the thread loading the text encoder, if any
    warm: Any = None  # train_update.WarmStart: sasrec starts from an earlier bundle
    warm_info: dict[str, Any] | None = None  # what the warm start did (for the manifest)

    def left(self) -> float:
        """Seconds of the budget left (inf without a budget)."""
        if self.budget is None:
            return float("inf")
        return self.budget - (time.perf_counter() - self.start)

    def step(self, name: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` between a ``running`` and a ``done`` report (with a short summary)."""
        self.report(StepReport(name, "running"))
        t0 = time.perf_counter()
        out = work()
        self.report(StepReport(name, "done", time.perf_counter() - t0, _summary(name, out)))
        return out

    def split(self, data: InteractionData, eval_users: int, seed: int) -> None:
        """Leave-one-out split and the users sampled for the offline check."""
        self.loo = leave_one_out(data)
        n = min(eval_users, len(self.loo.users))
        self.sample = np.sort(np.random.default_rng(seed).permutation(len(self.loo.users))[:n])

    def preload_encoder(self) -> Any:
        """The default text encoder (cached under ``<data_dir>/cache``), loading in a thread."""
        import threading

        from shopflow.text.encoder import TextEncoder

        encoder = TextEncoder(cache_dir=self.settings.data_dir / "cache")
        self.loading = threading.Thread(target=lambda: encoder.model, daemon=True)
        self.loading.start()  # an error here shows again, raised, on the first encode
        return encoder

    def texts(
        self, columns: ItemColumns, data: InteractionData, encoder: Any, share: float
    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Item text vectors within ``share`` of the budget left, never-seen items first."""
        counts = np.bincount(np.concatenate(data.sequences), minlength=data.n_items)
        cold_first = np.lexsort((-counts, counts > 0))  # never-seen items, then the most seen
        if self.loading is not None:
            self.loading.join()
        return item_vectors(
            columns.texts, encoder, cold_first.tolist(), max(self.left() * share, 0.0)
        )

    def fit(self, name: str, data: InteractionData) -> None:
        """Fit ``name`` on ``data`` into ``fitted``, then its offline check; never raises."""
        self.report(StepReport(name, "running"))
        if self.warm is not None and name == "sasrec":  # no offline check: see train_update
            from shopflow.train_update import fit_warm

            self.steps[name] = step = fit_warm(self, name, data)
            self.report(step)
            return
        t0 = time.perf_counter()
        try:
            model = make_model(name, self.settings, self.overrides.get(name))
            reason = None
            if name in TEXT_MODELS and not any(data.side.text or ()):
                reason = "no item text encoded"
            elif name in TORCH_MODELS and self.left() != float("inf"):
                self.epoch_s = 1.2 * epoch_seconds(model.config, data)
                reason = cap_training(model, self.left() / 2, self.epoch_s)
            if reason is not None:
                log.warning("model %s left out: %s", name, reason)
                step = StepReport(name, "skipped", detail=reason)
            else:
                with torch_threads() if name in TORCH_MODELS else nullcontext():
                    self.fitted[name] = model.fit(data)
                step = StepReport(name, "fitted", time.perf_counter() - t0)
        except Exception as exc:  # one model's failure must not cost the others their bundle
            log.exception("model %s failed to fit; it is left out of the bundle", name)
            step = StepReport(
                name, "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
            )
        if step.status == "fitted" and len(self.sample):
            step.metrics, step.detail = self.check(name, replace(self.loo.train, side=data.side))
        self.steps[name] = step
        self.report(step)

    def check(self, name: str, train: InteractionData) -> tuple[dict[str, float], str]:
        """Validation HR/NDCG@10 of a copy of the model fitted on the leave-one-out train part."""
        try:
            model = make_model(name, self.settings, self.overrides.get(name))
            limited = name in TORCH_MODELS and self.left() != float("inf")
            if limited and cap_training(model, self.left(), self.epoch_s) is not None:
                return {}, "offline check skipped: time budget spent"
            with torch_threads() if name in TORCH_MODELS else nullcontext():
                model.fit(train)
            hist = [self.loo.valid_histories[i] for i in self.sample]
            return validation_metrics(model, hist, self.loo.valid_targets[self.sample]), ""
        except Exception as exc:
            log.exception("offline check of %s failed", name)
            return {}, f"offline check failed: {type(exc).__name__}: {exc}"

    def summary(self) -> dict[str, Any]:
        """The manifest's fit times, left-out models and offline metrics."""
        by = {s: {n: r for n, r in self.steps.items() if r.status == s} for s in STATUSES}
        return {
            "fit_seconds": {n: round(r.seconds, 3) for n, r in by["fitted"].items()},
            "skipped": {n: r.detail for n, r in by["skipped"].items()},
            "failed": {n: r.detail for n, r in by["failed"].items()},
            "metrics": {
                "protocol": f"{LOO_PROTOCOL}; validation item (second-to-last), sampled users",
                "k": EVAL_K,
                "n_users": len(self.sample),
                "users": self.loo.train.users.to_external(self.loo.users[self.sample]),
                "train_interactions": self.loo.train.n_interactions,
                "models": {n: r.metrics for n, r in self.steps.items() if r.metrics},
            },
        }


def _summary(name: str, out: Any) -> str:
    if name == "data":
        d = out[0]
        return f"{d.n_interactions:,} interactions, {d.n_users:,} users, {d.n_items:,} items"
    if name == "text":
        i = out[1]
        later = f", {i['missing']:,} left for later" if i["missing"] else ""
        return f"{i['encoded']:,} encoded, {i['cached']:,} from cache{later}"
    return str(out)
