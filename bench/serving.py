"""Serving benchmark: HTTP throughput and latency of the real service, and ingestion over HTTP.

One uvicorn worker serves the product app (``create_app``: API keys on, metrics, JSON logs at
WARNING) on the Amazon Beauty catalogue (S3-Rec files, 22,363 users, 12,101 items, 198,502 events,
imported with ``run_import("s3rec", ...)``) with the bundle of every default model
(``train_bundle``). The bench adds two routes to that app, and only here: ``GET /v1/_noop``, a
fixed 20-item list behind the same key check, the floor against which the real answers are read,
and ``GET /v1/_noop_sync``, the same as a plain ``def`` route.

Measured in the same run, interleaved (every repeat runs each target once, so a busy neighbour
slows them alike), with ``wrk`` (one thread, ``-c`` connections each keeping one request in flight):

- ``noop``: ``GET /v1/_noop``, an ``async def`` route: it runs on the event loop, as the
  recommendation routes do (``RecommendConfig.compute_threads`` 0), so the two are read alike;
  the "vs noop" ratios are against it; each repeat measures it first, then ``home``;
- ``noop_sync``: ``GET /v1/_noop_sync``, a plain ``def`` route, which FastAPI runs in its thread
  pool: the hand-off to a thread and back alone costs about as much as the whole no-op;
- ``home``: ``GET /v1/users/{id}/recommendations?scenario=home&n=20`` over 1,000 Beauty users,
  in turn (each user comes back every 1,000 requests, as returning shoppers do, with nothing new
  in between: the service's candidate cache answers their sources again, and the union, blend and
  page kept with those lists are given again); when the service has no such route
  yet, ``user_events`` (``GET /v1/users/{id}/events``) and ``item`` (``GET /v1/items/{id}``) stand
  in, and the table says so;
- ``home_live``: ``home`` while a live shop's traffic flows: 100 events a second of 500 other
  shoppers (batches of 10, ``trickle``); each accepted batch expires the trending list and moves
  co-visitation rows, so what the service keeps for a returning shopper (the co-visitation list,
  the union, the blend and the page) is rebuilt after every batch; the server's CPU per request
  includes those events';
- ``home_new``: the same request, but every request of the run for a user not asked before (the
  other 21,000 Beauty users, never reused): every source computes everything;
- ``ingest``: ``POST /v1/events`` in batches of 100 new events (durable: SQLite
  ``synchronous=FULL``, answered after the commit), from ``httpx.AsyncClient`` with 4 requests in
  flight; events accepted per second. The events are of 1,000 shoppers of their own, so that the
  home targets of the next repeat read the same histories as the first.

Throughput (requests/s), p50 and p99 (ms) are the medians over ``--repeats``; "vs noop" is the
ratio of the median throughputs, "paired" the median over the repeats of each repeat's own ratio
(the target right after the no-op in every repeat, so a slow spell of this shared machine weighs on
both of a pair alike). The load average is recorded before and after: this machine has 2 cores,
shared.

``wrk`` comes from the distribution: ``apt-get install wrk`` (Debian, Ubuntu) or
``brew install wrk``; the bench checks for it first and stops with that advice when it is missing.

Usage::

    .venv/bin/python bench/serving.py                       # 4 s per measurement, 3 repeats
    .venv/bin/python bench/serving.py --seconds 2 --repeats 1 --concurrency 16   # smoke

The prepared store and bundle are cached in ``bench/results/cache/serving-beauty`` (delete it to
import again; ``--retrain`` trains again; a bundle that lacks a default model is retrained); each
run serves a copy, so ingestion never changes the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "amazon_beauty_s3rec" / "Beauty.txt"
CACHE = ROOT / "bench" / "results" / "cache" / "serving-beauty"
RESULTS = ROOT / "bench" / "results" / "serving.json"
KEY = "sf_bench_" + "k" * 32
HOME = "/v1/users/{user_id}/recommendations"
NOOP_ITEMS = [{"item_id": f"noop-{i}", "score": 1.0 - i / 20, "reasons": []} for i in range(20)]
WRK_SCRIPT = """
local paths = {%s}
local i = %d
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"errors": %%d, "non_2xx": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout,
    e.status))
end
"""


# -- data: Beauty in a store, every model in a bundle (cached) ------------------------------------
def prepare(console: Console, train_budget_s: float, retrain: bool) -> dict[str, Any]:
    """Import Beauty into :data:`CACHE` once; train a bundle unless one holds every default model.

    Returns what the cache holds: import figures, bundle version, models in it, and why any is not.
    """
    from shopflow.config import load_settings
    from shopflow.store.store import Store

    marker = CACHE / "imported.json"
    settings = load_settings(data_dir=CACHE)
    if not marker.is_file():
        if not DATASET.is_file():
            raise SystemExit(f"Beauty is not at {DATASET} (see its README in shared/datasets)")
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        from shopflow.ingest.importers import run_import

        store = Store.from_settings(settings)
        t0 = time.perf_counter()
        try:
            with console.status("Importing Amazon Beauty (s3rec)…"):
                report = run_import("s3rec", DATASET, store)
        finally:
            store.close()
        marker.write_text(
            json.dumps(
                {
                    "import_s": round(time.perf_counter() - t0, 1),
                    "events": report.events_accepted,
                    "items": report.items_inserted,
                }
            )
        )
    info: dict[str, Any] = json.loads(marker.read_text())
    try:
        from shopflow.train import DEFAULT_MODELS, train_bundle
    except ImportError as exc:
        return {**info, "bundle": None, "models": [], "note": f"no training code yet: {exc}"}
    from shopflow.models.registry import MODELS

    manifest = _current_manifest(CACHE / "bundles")
    if (
        retrain
        or manifest is None
        or _missing(manifest, [m for m in DEFAULT_MODELS if m in MODELS])
    ):
        store = Store.from_settings(settings)
        t0 = time.perf_counter()
        try:
            with console.status(f"Training every default model (budget {train_budget_s:.0f} s)…"):
                train_bundle(store, settings, time_budget_s=train_budget_s)
        finally:
            store.close()
        info["train_s"] = round(time.perf_counter() - t0, 1)
        manifest = _current_manifest(CACHE / "bundles")
    assert manifest is not None
    info["bundle"] = manifest["version"]
    info["models"] = sorted(manifest.get("fit_seconds", {}))
    info["left_out"] = {**manifest.get("skipped", {}), **manifest.get("failed", {})}
    return info


def _missing(manifest: dict[str, Any], wanted: list[str]) -> list[str]:
    """Models of ``wanted`` neither in the bundle nor skipped for a reason of the data."""
    have = set(manifest.get("fit_seconds", {})) | set(manifest.get("skipped", {}))
    return [m for m in wanted if m not in have]


def _current_manifest(root: Path) -> dict[str, Any] | None:
    from shopflow.errors import NotFound
    from shopflow.store.bundles import BundleStore

    try:
        return BundleStore(root).manifest()
    except NotFound:
        return None


def sample_ids(data_dir: Path, n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` user ids (with events) and ``n`` item ids of the prepared store, drawn by ``seed``,
    and every other user id (shuffled)."""
    from sqlalchemy import select

    from shopflow.config import load_settings
    from shopflow.store.db import events, items
    from shopflow.store.store import Store

    store = Store.from_settings(load_settings(data_dir=data_dir))
    try:
        with store.engine.connect() as conn:
            users = sorted(conn.execute(select(events.c.user_id).distinct()).scalars())
            item_ids = sorted(conn.execute(select(items.c.item_id)).scalars())
    finally:
        store.close()
    rng = random.Random(seed)
    chosen = rng.sample(users, min(n, len(users)))
    taken = set(chosen)
    others = [u for u in users if u not in taken]
    rng.shuffle(others)
    return chosen, rng.sample(item_ids, min(n, len(item_ids))), others


# -- the server: the product app plus the bench-only no-op route ----------------------------------
def serve(data_dir: str, port: int) -> None:
    """Run in the server subprocess (``--serve``): one uvicorn worker, keys on, logs at WARNING."""
    import uvicorn
    from fastapi import APIRouter, Depends

    from shopflow.config import load_settings
    from shopflow.serving.app import create_app
    from shopflow.serving.auth import require_scope
    from shopflow.serving.logs import configure_json_logging

    configure_json_logging("warning")
    settings = load_settings(data_dir=data_dir, auth={"api_key": KEY})
    app = create_app(settings)
    noop = APIRouter()

    @noop.get("/v1/_noop")
    async def noop_route() -> dict[str, Any]:
        return {"recommendation_id": "noop", "strategy": "noop", "items": NOOP_ITEMS}

    @noop.get("/v1/_noop_sync")
    def noop_sync_route() -> dict[str, Any]:
        return {"recommendation_id": "noop", "strategy": "noop", "items": NOOP_ITEMS}

    app.include_router(noop, dependencies=[Depends(require_scope("read"))])
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="asyncio"
    )  # the loop `shopflow serve` runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, argv: Callable[[int], list[str]] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server subprocess (``argv(port)``: another command line than this script's
    ``--serve``) and wait until it is ready; the process and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOW_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        argv(port) if argv else [sys.executable, __file__, "--serve", str(data_dir), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not become ready in 300 s")


# -- load generators ------------------------------------------------------------------------------
WRK_MISSING = (
    "wrk, the HTTP load generator this bench drives, is not installed: install it with "
    "`apt-get install wrk` (Debian, Ubuntu) or `brew install wrk` (macOS), then run again"
)


def wrk(
    base: str, paths: list[str], connections: int, seconds: float, start: int = 0
) -> dict[str, float]:
    """Closed-loop GETs of ``paths`` in turn (from position ``start``) over ``connections``
    keep-alive connections."""
    if shutil.which("wrk") is None:
        raise SystemExit(WRK_MISSING)
    quoted = ", ".join(json.dumps(p) for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (quoted, start, KEY))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    try:
        out = subprocess.run(
            [*cmd, "-s", f.name, base], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(f.name)
    raw = json.loads(out.strip().splitlines()[-1])
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non_2xx"],
    }


async def _ingest(
    base: str,
    users: list[str],
    items: list[str],
    seconds: float,
    batch: int,
    in_flight: int,
    seed: int,
) -> dict[str, float]:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).timestamp()
    counter = {"n": 0, "accepted": 0, "requests": 0, "errors": 0}
    latencies: list[float] = []

    def body() -> list[dict[str, Any]]:
        out = []
        for _ in range(batch):
            counter["n"] += 1
            out.append(
                {
                    "event_id": f"bench-{tag}-{counter['n']}",
                    "type": rng.choice(("view", "click", "add_to_cart", "purchase")),
                    "user_id": rng.choice(users),
                    "item_id": rng.choice(items),
                    "timestamp": now - rng.random() * 3600,
                }
            )
        return out

    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < end:
                payload = body()
                t0 = time.perf_counter()
                r = await client.post("/v1/events", json=payload)
                latencies.append(time.perf_counter() - t0)
                counter["requests"] += 1
                if r.status_code == 200:
                    counter["accepted"] += r.json()["accepted"]
                else:
                    counter["errors"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "events_per_s": counter["accepted"] / wall,
        "rps": counter["requests"] / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests": counter["requests"],
        "errors": counter["errors"],
    }


def ingest(base: str, users: list[str], items: list[str], seconds: float, seed: int) -> dict:
    return asyncio.run(_ingest(base, users, items, seconds, batch=100, in_flight=4, seed=seed))


TRICKLE_BATCH, TRICKLE_EVERY_S = 10, 0.1  # home_live: 100 events/s of other shoppers


def trickle(base: str, items: list[str], stop: threading.Event, seed: int, out: dict) -> None:
    """Post ``TRICKLE_BATCH`` events of other shoppers every ``TRICKLE_EVERY_S`` until ``stop``:
    the traffic of a live shop while ``home_live`` is measured (trending and co-visitation move)."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    sent = accepted = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as client:
        next_at = time.perf_counter()
        while not stop.is_set():
            batch = []
            for _ in range(TRICKLE_BATCH):
                sent += 1
                batch.append(
                    {
                        "event_id": f"trickle-{tag}-{sent}",
                        "type": rng.choice(("view", "view", "click", "add_to_cart", "purchase")),
                        "user_id": f"bench-trickle-{rng.randrange(500)}",
                        "item_id": rng.choice(items),
                        "timestamp": datetime.now(UTC).timestamp(),
                    }
                )
            r = client.post("/v1/events", json=batch, timeout=30)
            if r.status_code == 200:
                accepted += r.json()["accepted"]
            next_at += TRICKLE_EVERY_S
            stop.wait(max(0.0, next_at - time.perf_counter()))
    out["accepted"] = accepted


def wrk_live(
    base: str, paths: list[str], connections: int, seconds: float, start: int, items: list[str]
) -> dict[str, float]:
    """:func:`wrk` while :func:`trickle` posts events; adds the events accepted per second."""
    stop, out = threading.Event(), {"accepted": 0}
    thread = threading.Thread(target=trickle, args=(base, items, stop, start, out))
    t0 = time.perf_counter()
    thread.start()
    try:
        result = wrk(base, paths, connections, seconds, start)
    finally:
        stop.set()
        thread.join()
    result["trickle_events_per_s"] = out["accepted"] / (time.perf_counter() - t0)
    return result


def median_of(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Medians of each figure, and each repeat's own figures in order (``runs``)."""
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["runs"] = [{k: round(v, 3) for k, v in r.items()} for r in runs]
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far; nan off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(pid: int, result_of: Any, *args: Any) -> dict[str, float]:
    """Run one measurement and add the server's CPU milliseconds per request to its result."""
    c0 = cpu_seconds(pid)
    result = result_of(*args)
    result["cpu_ms_per_req"] = 1000 * (cpu_seconds(pid) - c0) / max(result["requests"], 1)
    return result


def cells(r: dict[str, float]) -> list[str]:
    return [f"{r['rps']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(int(r["errors"]))]


def cpu(r: dict[str, float]) -> str:
    return f"{r['cpu_ms_per_req']:.2f}"


def paired_ratio(target: list[dict[str, float]], noop: list[dict[str, float]]) -> float:
    """Median over the repeats of the target's throughput over the no-op's in the same repeat."""
    pairs = [t["rps"] / n["rps"] for t, n in zip(target, noop, strict=True) if n["rps"]]
    return statistics.median(pairs) if pairs else float("nan")


def ratio(results: dict[str, dict[str, float]], name: str, c: int) -> float:
    """Throughput of ``name`` over the no-op's at concurrency ``c`` (nan without no-op answers)."""
    noop = results[f"noop@c{c}"]["rps"]
    return results[f"{name}@c{c}"]["rps"] / noop if noop else float("nan")


# -- the run --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="Length of one measurement.")
    parser.add_argument("--repeats", type=int, default=3, help="Measurements per target (median).")
    parser.add_argument("--concurrency", default="16,64", help="wrk connections, comma-separated.")
    parser.add_argument("--users", type=int, default=1000, help="Distinct users/items requested.")
    parser.add_argument("--train-budget", type=float, default=900.0, help="Seconds, first run.")
    parser.add_argument("--retrain", action="store_true", help="Train a new cached bundle.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; 2 shared cores
    console = Console()
    if shutil.which("wrk") is None:  # before minutes of import and training
        raise SystemExit(WRK_MISSING)
    levels = [int(c) for c in args.concurrency.split(",")]
    prepared = prepare(console, args.train_budget, args.retrain)
    work = Path(tempfile.mkdtemp(prefix="shopflow-bench-"))
    data_dir = work / "data"
    shutil.copytree(CACHE, data_dir)
    users, items, others = sample_ids(data_dir, args.users, args.seed)
    load_before = os.getloadavg()
    proc, base = start_server(data_dir)
    try:
        paths = httpx.get(f"{base}/openapi.json").json()["paths"]
        # the main target runs right after the no-op in every repeat: their paired ratio
        targets: dict[str, list[str]] = {"noop": ["/v1/_noop"]}
        if HOME in paths:
            targets["home"] = [f"/v1/users/{u}/recommendations?scenario=home&n=20" for u in users]
            targets["home_live"] = targets["home"]  # the same, while events flow (``trickle``)
            targets["home_new"] = [
                f"/v1/users/{u}/recommendations?scenario=home&n=20" for u in others
            ]
        else:
            targets["user_events"] = [f"/v1/users/{u}/events?limit=20" for u in users]
            targets["item"] = [f"/v1/items/{i}" for i in items]
        targets["noop_sync"] = ["/v1/_noop_sync"]
        start = dict.fromkeys(targets, 0)  # where each target's next run starts in its paths
        with console.status("Warming up…"):  # also lets the server's background warm-up end
            for name, tpaths in targets.items():
                warm = wrk(base, tpaths, max(levels), 4.0, start[name])
                start[name] += int(warm["requests"])
                if warm["errors"]:
                    console.print(f"[yellow]{name}: {warm['errors']} errors in warm-up[/yellow]")
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        ingest_runs = []
        for rep in range(args.repeats):
            for c in levels:
                for name, tpaths in targets.items():
                    with console.status(f"repeat {rep + 1}/{args.repeats}: {name}, c={c}…"):
                        at = start[name]
                        if name == "home_live":
                            one = with_cpu(
                                proc.pid, wrk_live, base, tpaths, c, args.seconds, at, items
                            )
                        else:
                            one = with_cpu(proc.pid, wrk, base, tpaths, c, args.seconds, at)
                        start[name] += int(one["requests"])
                        runs.setdefault((name, c), []).append(one)
            with console.status(f"repeat {rep + 1}/{args.repeats}: ingest…"):
                shoppers = [f"bench-shopper-{k}" for k in range(1_000)]  # not the home users
                seed = args.seed + rep
                one = with_cpu(proc.pid, ingest, base, shoppers, items, args.seconds, seed)
                ingest_runs.append(one)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    results = {f"{name}@c{c}": median_of(r) for (name, c), r in runs.items()}
    results["ingest@4x100"] = median_of(ingest_runs)
    main_target = "home" if "home" in targets else "user_events"
    measured = [name for name in targets if name != "noop"]
    ratios = {name: {f"c{c}": ratio(results, name, c) for c in levels} for name in measured}
    # each repeat's throughput over the no-op's of the same repeat, then the median: a slow spell
    # of this shared machine moves both of a pair alike
    paired = {
        name: {f"c{c}": paired_ratio(runs[(name, c)], runs[("noop", c)]) for c in levels}
        for name in measured
    }
    # what the ratio would be with a core to itself: no-op CPU per request over the target's
    cpu_ratios = {
        name: {
            f"c{c}": results[f"noop@c{c}"]["cpu_ms_per_req"]
            / results[f"{name}@c{c}"]["cpu_ms_per_req"]
            for c in levels
        }
        for name in measured
    }
    report = {
        "command": "python bench/serving.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": load_after,
        },
        "prepared": prepared,
        "targets": {
            k: v[0] if len(v) == 1 else f"{len(v)} paths, e.g. {v[0]}" for k, v in targets.items()
        },
        "seconds": args.seconds,
        "repeats": args.repeats,
        "results": results,
        "throughput_vs_noop": ratios,
        "throughput_vs_noop_paired": paired,
        "cpu_cost_noop_over_target": cpu_ratios,
        "sqlite_synchronous": "FULL",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    table = Table(title=f"Serving, 1 uvicorn worker, median of {args.repeats} × {args.seconds:g} s")
    cols = (
        "target", "conc.", "req/s", "p50 ms", "p99 ms", "errors", "vs noop", "paired", "CPU ms/req"
    )  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "target" else "right")
    for (name, c), _ in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0] != "noop")):
        r = results[f"{name}@c{c}"]
        pair = paired[name][f"c{c}"] if name in paired else 1.0
        vs = f"{ratio(results, name, c):.2f}×"
        table.add_row(name, str(c), *cells(r), vs, f"{pair:.2f}×", cpu(r))
    ing = results["ingest@4x100"]
    ev_s = f"{ing['events_per_s']:,.0f} ev/s"
    table.add_row("ingest (100/batch)", "4", *cells(ing), ev_s, "", cpu(ing))
    console.print(table)
    if main_target != "home":
        console.print(
            "[yellow]No home-feed route in this service yet: user_events and item stand "
            "in for it.[/yellow]"
        )
    console.print(
        "CPU ms/req: the server process's CPU time (all threads) per answer; no-op CPU / "
        "target CPU = "
        + "; ".join(
            f"{name} " + ", ".join(f"{k}: {v:.2f}" for k, v in by_c.items())
            for name, by_c in cpu_ratios.items()
        )
    )
    console.print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs)")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
