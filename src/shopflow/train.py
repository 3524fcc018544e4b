"""``shopflow train`` without the command line: the store's events and catalogue → one model bundle.

:func:`train_bundle` reads the event log (up to an optional cutoff) and the whole catalogue, so every
catalogue item has a dense id even before anyone saw it; embeds item texts (cached by content hash
under ``<data_dir>/cache``, so a retrain encodes only new or changed items); fits each requested model
from the registry, leaving out (and logging) any that fails or does not fit the time budget; checks
each model offline on held-out validation items; and writes the bundle atomically
(:func:`shopflow.models.bundle.write_bundle`). Framework-free: the CLI draws progress through the
``progress`` callback.

The offline check is leave-one-out on the training data (``eval.split.leave_one_out``): a second
copy of each model is fitted on every user's sequence without its last two items and ranks the whole
catalogue (own history excluded) for the second-to-last item, for a sample of users. The bundle's
models themselves are fitted on everything before the cutoff; nothing after it is read.

Example
-------
>>> path = train_bundle(store, settings, models=("trending", "covisit"))   # doctest: +SKIP
>>> json.loads((path / "manifest.json").read_text())["metrics"]["models"]    # doctest: +SKIP
{'trending': {'hr@10': 0.05, 'ndcg@10': 0.02}, 'covisit': {'hr@10': 0.21, 'ndcg@10': 0.11}}
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopflow.config import Settings
from shopflow.errors import NotFound, ShopflowError
from shopflow.eval.split import LOO_PROTOCOL, leave_one_out
from shopflow.features.sequences import InteractionData, ItemSide, from_events
from shopflow.models.base import Recommender, mask_seen, top_k
from shopflow.models.bundle import (
    UNTRACKED_STOCK,
    ItemColumns,
    model_class,
    unit_rows,
    write_bundle,
)
from shopflow.store.bundles import BundleStore
from shopflow.store.idmap import IdMap
from shopflow.store.store import Store

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
Progress = Callable[["StepReport"], None]


class NoEvents(ShopflowError):
    """The store holds nothing to learn from."""


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


# -- the store's data -------------------------------------------------------------------------------
def store_fingerprint(store: Store) -> dict[str, int]:
    """What changes with the store: event count and last seq, catalogue size and last update."""
    from sqlalchemy import func, select

    from shopflow.store.db import events, items

    with store.engine.connect() as conn:
        n_events, last_seq = conn.execute(select(func.count(), func.max(events.c.seq))).one()
        n_items, updated = conn.execute(select(func.count(), func.max(items.c.updated_at))).one()
    return {
        "n_events": int(n_events or 0),
        "last_seq": int(last_seq or 0),
        "n_catalogue_items": int(n_items or 0),
        "catalogue_updated_at": int(updated or 0),
    }


def needs_training(store: Store, bundles: BundleStore) -> str | None:
    """Why a new bundle should be trained (none yet, store changed since), or None if up to date."""
    try:
        manifest = bundles.manifest()
    except NotFound:
        return "no model bundle yet"
    if manifest.get("cutoff_requested"):
        return "the current bundle was trained with a cutoff"
    if manifest.get("store") != store_fingerprint(store):
        return "the store changed since the current bundle was trained"
    if manifest.get("text", {}).get("missing"):
        return "some item texts were not encoded yet"
    return None


def load_training_data(
    store: Store, cutoff: datetime | None = None
) -> tuple[InteractionData, ItemColumns]:
    """Events before ``cutoff`` as per-user sequences over the whole catalogue, and item columns.

    Raises
    ------
    NoEvents
        No event naming an item before the cutoff.
    """
    catalogue = store.catalogue.to_polars()
    events = store.events.to_polars(end=cutoff)
    data = from_events(events, name="store", items=IdMap(catalogue["item_id"].to_list()))
    if data.n_interactions == 0:
        when = f" before {cutoff.isoformat()}" if cutoff else ""
        raise NoEvents(f"no events{when}: run `shopflow demo generate` or `shopflow import …`")
    columns = item_columns(catalogue, data.items)
    side = ItemSide(
        text=columns.texts,
        brand=columns.brands,
        categories=[list(p) for p in columns.paths],
        price=columns.price,
        created_at=columns.created_at,
    )
    last = events["timestamp"].max()
    meta = {"last_event": last.isoformat() if isinstance(last, datetime) else None}
    return replace(data, side=side, meta=meta), columns


def item_text(title: str | None, brand: str | None, path: Sequence[str], desc: str | None) -> str:
    """The text an item is embedded from: title, brand, category path and description."""
    parts = [title, brand, " > ".join(path), desc]
    return ". ".join(p.strip() for p in parts if p and p.strip())


def item_columns(catalogue: pl.DataFrame, items: IdMap) -> ItemColumns:
    """Catalogue rows aligned with ``items``; items the catalogue lacks get empty rows."""
    row_of = {e: r for r, e in enumerate(catalogue["item_id"].to_list())}
    idx = np.array([row_of.get(e, -1) for e in items.external_ids], dtype=np.int64)
    ok = idx >= 0

    def column(name: str) -> list[Any]:
        values = catalogue[name].to_list()
        return [values[r] if r >= 0 else None for r in idx]

    def array(values: np.ndarray, fill: float, dtype: Any) -> np.ndarray:
        out = np.full(len(idx), fill, dtype=dtype)
        out[ok] = values[idx[ok]]
        return out

    titles, brands, descs = column("title"), column("brand"), column("description")
    paths = [tuple(p or ()) for p in column("categories")]
    texts = [
        item_text(t, b, p, d) or None if r >= 0 else None
        for t, b, p, d, r in zip(titles, brands, paths, descs, idx, strict=True)
    ]
    created = catalogue["created_at"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
    stock = catalogue["stock"].fill_null(UNTRACKED_STOCK).to_numpy().astype(np.int64)
    return ItemColumns(
        ids=items,
        titles=titles,
        texts=texts,
        brands=[b or None for b in brands],
        paths=paths,
        price=array(catalogue["price"].to_numpy().astype(np.float64), np.nan, np.float64),
        stock=array(stock, UNTRACKED_STOCK, np.int64),
        created_at=array(created, np.nan, np.float64),
        in_catalogue=ok,
    )


# -- item text vectors -------------------------------------------------------------------------------
def item_vectors(
    texts: Sequence[str | None],
    encoder: Any,
    order: Sequence[int] | None = None,
    seconds: float = float("inf"),
    chunk: int = 64,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Unit text vectors (n, E) aligned with ``texts``; zero rows: no text, or not encoded in time.

    Texts go to ``encoder`` (a :class:`~shopflow.text.encoder.TextEncoder`, whose cache keeps what
    was ever encoded) in chunks, items in ``order`` first; no chunk starts after ``seconds``. ``info``
    counts the texts ``encoded`` now, taken from the ``cached`` ones and left ``missing``, and lists
    the ``done`` indices.
    """
    start = time.perf_counter()
    present = [int(i) for i in (range(len(texts)) if order is None else order) if texts[i]]
    before = int(getattr(encoder, "n_encoded", 0))
    out: np.ndarray | None = None
    done: list[int] = []
    for lo in range(0, len(present), chunk):
        if time.perf_counter() - start > seconds:
            break
        idx = present[lo : lo + chunk]
        with torch_threads():
            vecs = unit_rows(np.asarray(encoder.encode([str(texts[i]) for i in idx])))
        if out is None:
            out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
        out[idx] = vecs
        done.extend(idx)
    encoded = int(getattr(encoder, "n_encoded", 0)) - before
    info = {
        "model": str(getattr(encoder, "model_name", type(encoder).__name__)),
        "encoded": encoded,
        "cached": len(done) - encoded,
        "missing": len(present) - len(done),
        "dim": None if out is None else int(out.shape[1]),
        "done": sorted(done),
    }
    if info["missing"]:
        log.warning("%d item texts not encoded within the time budget (zero vectors for now; "
                    "the next `shopflow train` encodes them)", info["missing"])
    return out, info


# -- models -----------------------------------------------------------------------------------------
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

    recs = np.full((len(histories), k), -1, dtype=np.int64)
    for lo in range(0, len(histories), 512):
        batch = list(histories[lo : lo + 512])
        scores = model.score(batch)
        mask_seen(scores, batch)
        ids, _ = top_k(scores, k)
        recs[lo : lo + len(batch), : ids.shape[1]] = ids
    return {
        f"hr@{k}": mean_metric(hit_rate_at_k(recs, targets, k)),
        f"ndcg@{k}": mean_metric(ndcg_at_k(recs, targets, k)),
    }


def epoch_seconds(config: Any, data: InteractionData, steps: int = 3) -> float:
    """About how long one sasrec epoch on ``data`` takes here (an upper bound): a few warm training
    steps on full-width random batches, times the number of batches of an epoch."""
    import torch

    from shopflow.models.losses import full_softmax_ce
    from shopflow.models.sasrec import SASRec, SASRecConfig

    lengths = np.array([len(s) for s in data.sequences], dtype=np.int64)
    windows = int(np.ceil((lengths[lengths >= 2] - 1) / config.max_len).sum())
    if windows == 0:
        return 0.0
    net_cfg = SASRecConfig(**{f.name: getattr(config, f.name) for f in fields(SASRecConfig)})
    net = SASRec(replace(net_cfg, side_tokens=False, side_text=False), data.n_items).train()
    gen = torch.Generator().manual_seed(0)
    b = min(config.batch_size, windows)
    x = torch.randint(1, data.n_items + 1, (b, config.max_len), generator=gen)  # (b, T)
    y = torch.randint(0, data.n_items, (b, config.max_len), generator=gen)  # (b, T)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    with torch_threads():
        for step in range(steps + 1):
            if step == 1:  # the first step pays for one-off set-up
                start = time.perf_counter()
            loss = full_softmax_ce(net(x), y, net.item_table())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / steps * np.ceil(windows / b)


@contextmanager
def torch_threads() -> Iterator[int]:
    """Torch threads limited to the cores not already busy (1-min load average), at least one.

    On a shared host spinning threads that wait for a busy core make torch several times slower
    than one thread (measured: sasrec epoch 52 s with 2 threads, 15 s with 1, at load 10 on 2 cores).
    """
    import torch

    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    free = (cores or 1) - os.getloadavg()[0] + 1.0  # + 1: this process's own load
    threads = max(1, min(before, int(free)))
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def _capped(model: Recommender, data: InteractionData, seconds: float) -> str | None:
    """Cap a torch model's training to ``seconds``; the reason to skip it when an epoch won't fit."""
    estimate = 1.2 * epoch_seconds(model.config, data)
    if estimate > seconds:
        return f"one epoch takes about {estimate:.0f} s; {max(seconds, 0):.0f} s of the budget left"
    cap = getattr(model.config, "max_seconds", None)
    model.config.max_seconds = seconds if cap is None else min(cap, seconds)  # type: ignore[attr-defined]
    return None


# -- the whole run ----------------------------------------------------------------------------------
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
        Wall-clock budget (from the start). The cheap models (trending, covisit, als, ...) always
        come first and are always fitted; then item texts are encoded (cold items first) until
        ``TEXT_SHARE`` of what is left is spent when a torch model follows (the rest keeps zero vectors
        until the next run: the cache keeps what was done); then ``content``; then the torch models,
        each capped to half of what is left (the other half for its offline check), or skipped with
        the reason when one epoch would not fit.
    overrides
        Per-model config overrides, e.g. ``{"sasrec": {"epochs": 1}}``.
    eval_users
        Users sampled for the offline check (0: no check).
    encoder
        Text encoder (``encode(texts) -> (n, E)``, ``name``) for texts not in the cache.
    text_vectors
        Embed item texts (for content similarity, search and cold items); forced on for ``content``.

    Raises
    ------
    NoEvents
        The store has no event before the cutoff.
    """
    report = progress or (lambda r: None)
    start = time.perf_counter()

    def left() -> float:
        if time_budget_s is None:
            return float("inf")
        return time_budget_s - (time.perf_counter() - start)

    fingerprint = store_fingerprint(store)
    t0 = time.perf_counter()
    report(StepReport("data", "running"))
    data, columns = load_training_data(store, cutoff)
    report(StepReport("data", "done", time.perf_counter() - t0, f"{data.n_interactions:,} "
                      f"interactions, {data.n_users:,} users, {data.n_items:,} items"))
    split = leave_one_out(data)
    n_eval = min(eval_users, len(split.users))
    sample = np.sort(np.random.default_rng(seed).permutation(len(split.users))[:n_eval])
    check = _Check([split.valid_histories[i] for i in sample], split.valid_targets[sample])
    fitted: dict[str, Recommender] = {}
    steps: dict[str, StepReport] = {}

    def fit(name: str, data: InteractionData) -> None:
        report(StepReport(name, "running"))
        steps[name] = step = _fit_step(name, settings, overrides, data, fitted, left)
        if step.status == "fitted" and n_eval:
            eval_data = replace(split.train, side=data.side)
            step.metrics, step.detail = check.run(name, settings, overrides, eval_data, left())
        report(step)

    names = list(dict.fromkeys(models))
    for name in names:
        if name not in TEXT_MODELS | TORCH_MODELS:
            fit(name, data)
    text_info: dict[str, Any] = {}
    vectors = None
    if text_vectors or TEXT_MODELS & set(names):
        t0 = time.perf_counter()
        report(StepReport("text", "running"))
        seconds = left() * (TEXT_SHARE if TORCH_MODELS & set(names) else 1.0)
        counts = np.bincount(np.concatenate(data.sequences), minlength=data.n_items)
        cold_first = np.lexsort((-counts, counts > 0))  # never-seen items, then the most seen
        if encoder is None:
            from shopflow.text.encoder import TextEncoder

            encoder = TextEncoder(cache_dir=settings.data_dir / "cache")
        vectors, text_info = item_vectors(columns.texts, encoder, cold_first, max(seconds, 0.0))
        report(StepReport("text", "done", time.perf_counter() - t0,
                          f"{text_info['encoded']:,} encoded, {text_info['cached']:,} from cache"
                          + (f", {text_info['missing']:,} left for later" if text_info["missing"]
                             else "")))
        # models embed only what is encoded (from the cache): the rest waits for the next run
        done = set(text_info.pop("done"))
        texts = [t if i in done else None for i, t in enumerate(columns.texts)]
        data = replace(data, side=replace(data.side, text=texts))
    for name in names:
        if name in TEXT_MODELS:
            fit(name, data)
    for name in names:
        if name in TORCH_MODELS:
            fit(name, data)

    t0 = time.perf_counter()
    report(StepReport("write", "running"))
    manifest = {
        "training_cutoff": cutoff.isoformat() if cutoff else data.meta["last_event"],
        "cutoff_requested": cutoff.isoformat() if cutoff else None,
        "store": fingerprint,
        "n_interactions": data.n_interactions,
        "features": FEATURES,
        "text": text_info,
        "fit_seconds": {n: round(s.seconds, 3) for n, s in steps.items() if s.status == "fitted"},
        "skipped": {n: s.detail for n, s in steps.items() if s.status == "skipped"},
        "failed": {n: s.detail for n, s in steps.items() if s.status == "failed"},
        "metrics": {
            "protocol": f"{LOO_PROTOCOL}; validation item (second-to-last), sampled users",
            "k": EVAL_K,
            "n_users": n_eval,
            "users": data.users.to_external(split.users[sample]),
            "train_interactions": split.train.n_interactions,
            "models": {n: s.metrics for n, s in steps.items() if s.metrics},
        },
        "settings": {
            "models": list(models),
            "event_weights": dict(settings.event_weights),
            "time_budget_s": time_budget_s,
            "eval_users": eval_users,
            "configs": {n: asdict(m.config) for n, m in fitted.items() if is_dataclass(m.config)},
        },
    }
    path = write_bundle(
        BundleStore(settings.data_dir / "bundles"),
        items=data.items,
        users=data.users,
        models=fitted,
        item_columns=columns,
        item_vectors=vectors,
        histories=data.sequences,
        manifest=manifest,
    )
    report(StepReport("write", "done", time.perf_counter() - t0, str(path)))
    log.info("bundle %s: %s in %.1f s", path.name, ", ".join(fitted) or "no models",
             time.perf_counter() - start)
    return path


def _fit_step(
    name: str,
    settings: Settings,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    data: InteractionData,
    fitted: dict[str, Recommender],
    left: Callable[[], float],
) -> StepReport:
    """Fit one model into ``fitted``; a failure or a spent budget is reported, never raised."""
    t0 = time.perf_counter()
    try:
        model = make_model(name, settings, (overrides or {}).get(name))
        reason = None
        if name in TEXT_MODELS and not any(data.side.text or ()):
            reason = "no item text encoded"
        elif name in TORCH_MODELS and left() != float("inf"):
            reason = _capped(model, data, left() / 2)
        if reason is not None:
            log.warning("model %s left out: %s", name, reason)
            return StepReport(name, "skipped", detail=reason)
        with torch_threads() if name in TORCH_MODELS else nullcontext():
            fitted[name] = model.fit(data)
        return StepReport(name, "fitted", time.perf_counter() - t0)
    except Exception as exc:  # one model's failure must not cost the others their bundle
        log.exception("model %s failed to fit; it is left out of the bundle", name)
        return StepReport(name, "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")


@dataclass
class _Check:
    """The offline check: validation targets of the sampled users and their histories."""

    histories: list[np.ndarray]
    targets: np.ndarray

    def run(
        self,
        name: str,
        settings: Settings,
        overrides: Mapping[str, Mapping[str, Any]] | None,
        train: InteractionData,
        seconds: float,
    ) -> tuple[dict[str, float], str]:
        """Validation HR/NDCG@10 of a copy of the model fitted on the leave-one-out train part."""
        if name in TORCH_MODELS and seconds <= 0:
            return {}, "offline check skipped: time budget spent"
        try:
            model = make_model(name, settings, (overrides or {}).get(name))
            if name in TORCH_MODELS and seconds != float("inf"):
                cap = getattr(model.config, "max_seconds", None)
                model.config.max_seconds = seconds if cap is None else min(cap, seconds)  # type: ignore[attr-defined]
            with torch_threads() if name in TORCH_MODELS else nullcontext():
                return validation_metrics(model.fit(train), self.histories, self.targets), ""
        except Exception as exc:
            log.exception("offline check of %s failed", name)
            return {}, f"offline check failed: {type(exc).__name__}: {exc}"


def parse_cutoff(text: str | None) -> datetime | None:
    """An ISO 8601 date or time (naive means UTC), or None for no text."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2026-10-15T00:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
