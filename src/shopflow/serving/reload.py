"""Keeping the serving state: load a model bundle, swap it in atomically, keep live columns fresh.

:class:`StateKeeper` holds the one reference to the current
:class:`~shopflow.serving.state.ServingState`. :meth:`StateKeeper.reload` builds a complete new
state (bundle loaded, indexes built, live price and stock read) before it replaces that reference,
so a request that already took the old state finishes on it and none fails during a swap. Without a
bundle (nothing trained yet, or the bundle in force cannot be read) the state is the bare catalogue
and the service answers with its fallbacks. :func:`watch_bundles` is the app's background task: it
swaps in a bundle shortly after ``shopflow train`` publishes it and re-reads price and stock.

Example
-------
>>> keeper = StateKeeper(store, BundleStore("data/bundles"), RecommendConfig())  # doctest: +SKIP
>>> keeper.start(); keeper.model_version                                         # doctest: +SKIP
'20261101T120000.000000-ab12'
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopflow.ingest.schema import Item
from shopflow.serving.state import (
    RecommendConfig,
    ServingState,
    state_from_bundle,
    state_from_items,
)
from shopflow.store.bundles import BundleStore
from shopflow.store.db import items as items_table
from shopflow.store.store import Store

log = logging.getLogger(__name__)


def settle_heap() -> float:
    """Collect garbage, then move every surviving object out of the collector's sight; seconds.

    A loaded bundle is hundreds of thousands of long-lived Python objects (id maps, item tables,
    model metadata). Python's cyclic collector walks all of them at every full collection, which
    happens every few thousand requests and stalls the event loop for 100–300 ms: every request in
    flight waits (the p99 of the home feed). ``gc.freeze()`` puts them in the permanent generation,
    so full collections walk only what requests allocate. Unfreezing first lets the collection
    free the cycles of the state just replaced; reference counting frees the rest as usual.
    """
    t0 = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - t0


# unfrozen long-lived objects worth a freeze: without the pacer (``pace_collector``) the watcher
# checks at every poll (2 s), so a full collection walks a few seconds' growth, not 30 s of it
FREEZE_GROWTH = 20_000


def freeze_growth(threshold: int = FREEZE_GROWTH) -> int:
    """Freeze what the oldest generation gathered since the last freeze, once it is ``threshold``
    objects or more (events ingested, users seen: the online state grows); returns how many.

    Between bundle swaps the objects that live on (online state, caches) pile up in the oldest
    generation, and each full collection walks them all — a 30–40 ms stall of the event loop after
    a burst of ingestion on the Beauty bench. The young generations are collected first, so only
    long-lived objects are frozen; one that becomes cyclic garbage later waits for the next swap's
    :func:`settle_heap` (reference counting frees everything else as usual).
    """
    old = len(gc.get_objects(generation=2))
    if old < threshold:
        return 0
    gc.collect(1)
    gc.freeze()
    return old


class StateKeeper:
    """The current serving state and the ways it changes (see the module docstring).

    Parameters
    ----------
    store
        The catalogue is read for live price, stock and presence (and for the model-free state).
    bundles
        Where ``shopflow train`` publishes bundles.
    loader
        Reads a bundle directory (default ``shopflow.models.bundle.load_bundle``).
    on_install
        Called with each new state right after it is swapped in (e.g. to warm caches).
    """

    def __init__(
        self,
        store: Store,
        bundles: BundleStore,
        config: RecommendConfig,
        loader: Callable[[Path], Any] | None = None,
        on_install: Callable[[ServingState], None] | None = None,
    ) -> None:
        self.store, self.bundles, self.config = store, bundles, config
        self._loader = loader
        self._on_install = on_install
        self._state = state_from_items([], config)
        self._lock = threading.Lock()
        self._failed_version: str | None = None
        self._stale = False
        self.reloads = 0

    @property
    def state(self) -> ServingState:
        return self._state

    @property
    def model_version(self) -> str | None:
        return self._state.version

    def start(self) -> None:
        """Load the current bundle, or serve the bare catalogue when none loads (never raises)."""
        try:
            self.reload()
        except Exception:
            log.exception("the current model bundle cannot be loaded; serving fallbacks")
            self._failed_version = self.bundles.current_version()
            try:
                self.install(None)
            except Exception:  # the catalogue does not answer either: retried by the watcher
                log.exception("the catalogue cannot be read; serving nothing until it answers")
                self._stale = True

    def reload(self, bundle_path: str | Path | None = None) -> dict[str, Any]:
        """Load ``bundle_path`` (default: the current bundle) and swap it in; return what changed.

        The old state keeps answering until the new one is complete; on an error it stays in force
        and the error propagates.
        """
        with self._lock:
            t0 = time.perf_counter()
            path = Path(bundle_path) if bundle_path else self.bundles.current()
            bundle = None
            if path is not None:
                bundle = (self._loader or _default_loader())(path)
            previous = self.install(bundle)
            self._failed_version = None
            seconds = round(time.perf_counter() - t0, 3)
        log.info("bundle in force", extra={"version": self.model_version, "seconds": seconds})
        return {"version": self.model_version, "previous": previous, "seconds": seconds}

    def install(self, bundle: Any | None) -> str | None:
        """Build the state of ``bundle`` (None: the bare catalogue), swap it in, return the old
        version."""
        if bundle is None:
            state = state_from_items(self.store.catalogue.all(), self.config)
        else:
            state = state_from_bundle(bundle, self.config)
            self._refresh_live(state)
        previous, self._state = self._state.version, state  # the swap: one reference
        self._stale = False
        self.reloads += 1
        if self._on_install is not None:
            self._on_install(state)
        return previous

    def maybe_reload(self) -> bool:
        """Swap in a newly published bundle (or rebuild a stale model-free state); True: swapped."""
        version = self.bundles.current_version()
        if version is not None and version not in (self.model_version, self._failed_version):
            try:
                self.reload()
                return True
            except Exception:
                log.exception("new bundle not loaded", extra={"version": version})
                self._failed_version = version
        elif self._state.bundle is None and self._stale:
            self.install(None)
        return False

    def refresh_catalogue(self) -> int:
        """Re-read price, stock and presence of every item from the catalogue; return changes."""
        state = self._state
        if state.bundle is None:
            if self.store.catalogue.count() != int(state.table.available.sum()):
                self.install(None)
            return 0
        return self._refresh_live(state)

    def on_items(self, items: Sequence[Item], encoder: Any | None = None) -> None:
        """Catalogue writes through the API take effect at once: new price, stock and presence,
        and new or edited items (``serving.fresh``: text vector from ``encoder``, searchable)."""
        from shopflow.serving.fresh import with_items

        with self._lock:
            grown = with_items(self._state, items, encoder, self.config)
            if grown is not None:
                self._state = grown  # the swap: one reference
        table = self._state.table
        for it in items:
            if not table.set_live(it.item_id, it.price, it.stock):
                self._stale = True  # not expected: the state was just grown

    def _refresh_live(self, state: ServingState) -> int:
        q = select(items_table.c.item_id, items_table.c.price, items_table.c.stock)
        with self.store.engine.connect() as conn:
            rows = [(r[0], r[1], r[2]) for r in conn.execute(q)]
        return state.table.refresh_live(rows) if rows else 0


async def pace_collector(every: float, freeze_ticks: int, settle_seconds: float = 600.0) -> None:
    """Background task of the app: collect the youngest generation every ``every`` seconds; every
    ``freeze_ticks`` times the two young ones, then freeze what survived; every
    ``settle_seconds`` the whole heap (:func:`settle_heap`).

    Python starts a young collection when allocations outnumber deallocations by 700. A serving
    process under steady traffic keeps bounded caches full: every new entry evicts an old one, so
    the count hardly moves and young collections come rarely, each then walking tens of thousands
    of objects with the loop stopped (``bench/gc_pauses.py`` on the Beauty bench: up to 22 ms for
    the youngest generation, 60 ms for the two young ones). Collecting by the clock keeps each
    pass to a tenth of a second of
    growth; what survives is frozen at every third pass by default (a pass over a whole second of
    survivors took up to 29 ms), as :func:`freeze_growth` does, so full collections walk little.
    Cyclic garbage is collected while young; an object that joins a cycle after it was frozen
    waits for the next settle: one collection of the whole heap every ten minutes by default, a
    pause like the one at each bundle swap (:func:`settle_heap`).
    """
    tick, settled = 0, time.monotonic()
    while True:
        await asyncio.sleep(every)
        tick += 1
        if time.monotonic() - settled >= settle_seconds:
            settle_heap()
            settled = time.monotonic()
        elif tick % max(freeze_ticks, 1):
            gc.collect(0)
        else:
            gc.collect(1)
            gc.freeze()


async def watch_bundles(keeper: StateKeeper) -> None:
    """Background task of the app: swap in new bundles (polling ``CURRENT`` every
    ``poll_seconds``), re-read price, stock and presence every ``refresh_seconds``, and, when the
    collector is not paced (:func:`pace_collector`, which freezes on its own), freeze at every
    poll the long-lived objects gathered since the last freeze (:func:`freeze_growth`)."""
    last_refresh = time.monotonic()
    while True:
        await asyncio.sleep(keeper.config.poll_seconds)
        try:
            await asyncio.to_thread(keeper.maybe_reload)
            if time.monotonic() - last_refresh >= keeper.config.refresh_seconds:
                last_refresh = time.monotonic()
                await asyncio.to_thread(keeper.refresh_catalogue)
            if keeper.config.freeze_heap and keeper.config.collect_seconds <= 0:
                await asyncio.to_thread(freeze_growth)
        except Exception:
            log.exception("bundle watcher")


def _default_loader() -> Callable[[Path], Any]:
    from shopflow.models.bundle import load_bundle

    return load_bundle
