"""Warm start of the sequential model in ``shopflow train --warm-start BUNDLE``.

Instead of training ``sasrec`` from scratch, :func:`fit_warm` loads it from an earlier bundle, maps
that bundle's item ids onto the store's current item map (items new since then are added to the
embedding table, initialised from their side information; items gone are dropped), and fine-tunes
it on the sequences of the users who have events after the bundle's training cutoff (their whole
sequence, so the new events come with their context). The other models of the run are fitted as
usual. The manifest's ``warm_start`` records what was done.

Example
-------
>>> warm = WarmStart(BundleStore(root).current(), epochs=3)        # doctest: +SKIP
>>> train_bundle(store, settings, warm_start=warm)                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopflow.errors import NotFound
from shopflow.features.sequences import InteractionData
from shopflow.store.bundles import MANIFEST, BundleStore

if TYPE_CHECKING:
    from shopflow.models.sasrec_model import SASRecModel
    from shopflow.train import StepReport, _Run

log = logging.getLogger(__name__)

WARM_MODEL = "sasrec"  # the one model a warm start updates


@dataclass
class WarmStart:
    """Where to start from and how long to fine-tune."""

    bundle: Path  # a bundle directory holding a sasrec model
    epochs: int = 3
    # other TrainConfig settings of the fine-tuning (lr, batch_size, ...; default: the model's own);
    # the network's shape always comes from the bundle
    train: dict[str, Any] = field(default_factory=dict)


def resolve_bundle(text: str, bundles_root: Path) -> Path:
    """``current`` (the bundle in force under ``bundles_root``) or a bundle directory → its path."""
    if text == "current":
        path = BundleStore(bundles_root).current()
        if path is None:
            raise NotFound(f"no current bundle under {bundles_root}: run `shopflow train` first")
        return path
    path = Path(text)
    if not (path / MANIFEST).is_file():
        raise NotFound(f"{path} is not a model bundle (no {MANIFEST}); give a bundle or `current`")
    return path


def new_event_mask(data: InteractionData, manifest: dict[str, Any]) -> list[np.ndarray]:
    """Per user, which events came after the bundle's training data (bool, aligned with sequences).

    A bundle trained with ``--cutoff`` read events before it, so events at or after it are new;
    one trained on everything read events up to its last event, so later ones are new.
    """
    if data.timestamps is None:
        raise ValueError("a warm start needs event timestamps")
    requested = manifest.get("cutoff_requested")
    when = requested or manifest.get("training_cutoff")
    if not when:
        raise ValueError("the bundle's manifest has no training_cutoff")
    cut = datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
    if requested:
        return [np.asarray(t) >= cut for t in data.timestamps]
    return [np.asarray(t) > cut for t in data.timestamps]


def warm_sasrec(
    warm: WarmStart, data: InteractionData, max_seconds: float | None = None
) -> tuple[SASRecModel, dict[str, Any]]:
    """The bundle's sasrec over ``data``'s item map, fine-tuned on the events after its cutoff.

    Returns the model and what was done (for the manifest's ``warm_start``).
    """
    from shopflow.models.bundle import ITEMS_MAP
    from shopflow.models.sasrec_model import SASRecModel
    from shopflow.models.sasrec_update import align_items, fine_tune
    from shopflow.store.idmap import IdMap

    t0 = time.perf_counter()
    manifest = json.loads((warm.bundle / MANIFEST).read_text())
    sub = manifest.get("models", {}).get(WARM_MODEL)
    if sub is None:
        raise NotFound(
            f"bundle {warm.bundle.name} has no {WARM_MODEL} model to start from: "
            f"train one with `shopflow train --models …,{WARM_MODEL}`"
        )
    base = SASRecModel.load(warm.bundle / sub)
    old_items = IdMap.load(warm.bundle / ITEMS_MAP)
    model, n_new = align_items(base, old_items, data.items, data.side)
    masks = new_event_mask(data, manifest)
    users = [u for u, m in enumerate(masks) if m.any()]
    sequences = [data.sequences[u] for u in users]
    result = None
    if sequences:
        train = {**warm.train, "max_seconds": max_seconds}
        result = fine_tune(model, sequences, epochs=warm.epochs, **train)
    info = {
        "from": manifest.get("version", warm.bundle.name),
        "from_cutoff": manifest.get("cutoff_requested") or manifest.get("training_cutoff"),
        "new_items": n_new,
        "dropped_items": sum(1 for e in old_items.external_ids if e not in data.items),
        "users_with_new_events": len(users),
        "new_events": int(sum(int(m.sum()) for m in masks)),
        "epochs": len(result.history) if result else 0,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("warm start of %s from %s: %s", WARM_MODEL, info["from"], info)
    return model, info


def fit_warm(run: _Run, name: str, data: InteractionData) -> StepReport:
    """``_Run.fit`` for a warm start: fills ``run.fitted[name]`` and ``run.warm_info``; never
    raises (a failure is reported, and the model left out, like any model's)."""
    from shopflow.train import StepReport, torch_threads

    t0 = time.perf_counter()
    try:
        left = run.left()
        limit = left / 2 if left != float("inf") else None
        from shopflow.models.sasrec_train import TrainConfig

        known = {f.name for f in fields(TrainConfig)} - {"epochs", "max_seconds"}
        given = run.overrides.get(name, {})  # `--set sasrec.lr=…` and the like
        warm = replace(run.warm, train={k: v for k, v in given.items() if k in known})
        with torch_threads():
            model, run.warm_info = warm_sasrec(warm, data, limit)
        run.fitted[name] = model
        i = run.warm_info
        detail = (
            f"warm start from {i['from']}: {i['new_items']} new items, fine-tuned on "
            f"{i['users_with_new_events']} users with new events ({i['epochs']} epochs)"
        )
        return StepReport(name, "fitted", time.perf_counter() - t0, detail)
    except Exception as exc:
        log.exception("warm start of %s failed; it is left out of the bundle", name)
        return StepReport(name, "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
