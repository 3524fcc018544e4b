"""Freshness: time from an event's acknowledgement to a changed recommendation, over real HTTP.

One uvicorn worker serves the product app (``create_app``) on a data folder holding a store and a
trained bundle: by default the Amazon Beauty cache that ``bench/serving.py`` prepares
(``bench/results/cache/serving-beauty``), else a demo shop built here (generated, loaded and
trained with ``train_bundle`` into ``bench/results/cache/freshness-demo``). The server runs on a
copy, so the posted events never change the cache.

Each trial, for a user with a training history:

1. ``GET /v1/users/{id}/recommendations?scenario=home&n=20``: the list before;
2. ``POST /v1/events`` with one ``view`` of an item not on that list; the clock starts when the
   acknowledgement (sent after the durable append and the online update) arrives;
3. ``GET`` the home feed again, until its items differ from the list before; the clock stops when
   that answer arrives. Freshness = stop − start: it includes one full request of the home feed,
   so the table also shows the latency of that request alone (read without an event before it).

As a control, the same user's feed is read twice without an event in between: it must not change
(else the change could not be credited to the event). Prints a table and writes JSON.

Usage::

    .venv/bin/python bench/freshness.py                     # 200 trials
    .venv/bin/python bench/freshness.py --trials 50 --data-dir /path/to/data-dir
"""

from __future__ import annotations

import argparse
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
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BEAUTY = ROOT / "bench" / "results" / "cache" / "serving-beauty"
DEMO = ROOT / "bench" / "results" / "cache" / "freshness-demo"
HOME = "/v1/users/{user}/recommendations?scenario=home&n=20"


def has_bundle(data_dir: Path) -> bool:
    return (data_dir / "bundles" / "CURRENT").is_file() and (data_dir / "shopflow.db").is_file()


def prepare_demo(console: Console) -> Path:
    """A demo shop (600 users, 1,500 items) loaded and trained into :data:`DEMO`, once."""
    if has_bundle(DEMO):
        return DEMO
    from shopflow.config import load_settings
    from shopflow.ingest.demo import DemoConfig, generate, load_into
    from shopflow.store.store import Store
    from shopflow.train import train_bundle

    shutil.rmtree(DEMO, ignore_errors=True)
    settings = load_settings(data_dir=DEMO)
    store = Store.from_settings(settings)
    try:
        with console.status("Generating, loading and training the demo shop…"):
            load_into(store, generate(DemoConfig(seed=3, n_users=600, n_items=1_500, days=45)))
            train_bundle(
                store,
                settings,
                models=("trending", "covisit", "als", "sasrec"),
                time_budget_s=120,
                eval_users=0,
                text_vectors=False,
                overrides={"sasrec": {"epochs": 5}},
            )
    finally:
        store.close()
    return DEMO


def serve(data_dir: str, port: int) -> None:
    """Run in the server subprocess: one uvicorn worker, logs at WARNING."""
    import uvicorn

    from shopflow.config import load_settings
    from shopflow.serving.app import create_app
    from shopflow.serving.logs import configure_json_logging

    configure_json_logging("warning")
    app = create_app(load_settings(data_dir=data_dir))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOW_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(data_dir), str(port)],
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


def users_and_items(data_dir: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` users with a training history of 3+ items, and every item of the bundle."""
    import numpy as np

    bundle = data_dir / "bundles" / (data_dir / "bundles" / "CURRENT").read_text().strip()
    users = json.loads((bundle / "users.json").read_text())
    items = json.loads((bundle / "items.json").read_text())
    with np.load(bundle / "histories.npz") as z:
        lengths = np.diff(z["indptr"])
    rich = [u for u, length in zip(users, lengths, strict=True) if length >= 3]
    return random.Random(seed).sample(rich, min(n, len(rich))), items


def ids(r: httpx.Response) -> list[str]:
    r.raise_for_status()
    return [it["item_id"] for it in r.json()["items"]]


def trial(
    client: httpx.Client, user: str, items: list[str], rng: random.Random, k: int
) -> dict[str, float | int | bool]:
    url = HOME.format(user=user)
    before = ids(client.get(url))
    t = time.perf_counter()
    again = ids(client.get(url))  # control: no event, no change
    home_ms = (time.perf_counter() - t) * 1000
    item = rng.choice([i for i in rng.sample(items, 50) if i not in before])
    event = {"event_id": f"fresh-{user}-{k}-{time.time_ns()}", "type": "view", "user_id": user,
             "item_id": item, "timestamp": time.time()}  # fmt: skip
    t0 = time.perf_counter()
    r = client.post("/v1/events", json=[event])
    ack = time.perf_counter()
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    reads = 0
    while True:
        reads += 1
        after = ids(client.get(url))
        done = time.perf_counter()
        if after != before or reads >= 100:
            break
    return {
        "ack_ms": (ack - t0) * 1000,
        "home_ms": home_ms,
        "fresh_ms": (done - ack) * 1000,
        "reads": reads,
        "changed": after != before,
        "control_unchanged": again == before,
    }


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="store + bundles to serve")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "freshness.json")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    console = Console()
    source = args.data_dir or (BEAUTY if has_bundle(BEAUTY) else prepare_demo(console))
    if not has_bundle(source):
        raise SystemExit(f"{source} holds no store and bundle (shopflow.db, bundles/CURRENT)")
    users, items = users_and_items(source, args.trials, args.seed)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="shopflow-fresh-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("impressions", ".tmp-*"))
        load_before = os.getloadavg()[0]
        proc, base = start_server(data)
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                manifest = client.get("/v1/admin/bundle").json()
                for u in users[:5]:  # warm up
                    client.get(HOME.format(user=u))
                rows = [trial(client, u, items, rng, k) for k, u in enumerate(users)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        load_after = os.getloadavg()[0]
    fresh = [r["fresh_ms"] for r in rows]
    ack = [r["ack_ms"] for r in rows]
    home = [r["home_ms"] for r in rows]
    summary: dict[str, Any] = {
        "trials": len(rows),
        "fresh_ms": {"p50": pct(fresh, 0.5), "p95": pct(fresh, 0.95), "p99": pct(fresh, 0.99),
                     "max": max(fresh), "mean": statistics.fmean(fresh)},
        "ack_ms": {"p50": pct(ack, 0.5), "p95": pct(ack, 0.95)},
        "home_ms": {"p50": pct(home, 0.5), "p95": pct(home, 0.95)},
        "changed_at_first_read": sum(r["changed"] and r["reads"] == 1 for r in rows) / len(rows),
        "changed": sum(r["changed"] for r in rows) / len(rows),
        "control_unchanged": sum(r["control_unchanged"] for r in rows) / len(rows),
    }  # fmt: skip
    table = Table(title=f"Freshness over HTTP ({source.name}, {len(rows)} trials)")
    for col in ("measure", "p50", "p95", "p99", "max"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    f = summary["fresh_ms"]
    cols = ("p50", "p95", "p99", "max")
    table.add_row("event ack → changed home feed (ms)", *(f"{f[k]:.1f}" for k in cols))
    a = summary["ack_ms"]
    table.add_row("event ack itself (ms)", f"{a['p50']:.1f}", f"{a['p95']:.1f}", "", "")
    h = summary["home_ms"]
    table.add_row("home feed, no event (ms)", f"{h['p50']:.1f}", f"{h['p95']:.1f}", "", "")
    console.print(table)
    console.print(
        f"changed at the first read: {summary['changed_at_first_read']:.1%}; changed at all: "
        f"{summary['changed']:.1%}; unchanged without an event (control): "
        f"{summary['control_unchanged']:.1%}; load average {load_before:.1f} → {load_after:.1f}"
    )
    out = {
        "summary": summary,
        "data": str(source),
        "bundle": manifest.get("version"),
        "models": manifest.get("models"),
        "items": manifest.get("items"),
        "load_average": [load_before, load_after],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "command": "bench/freshness.py " + " ".join(sys.argv[1:]),
        "trials": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"written {args.json}")


if __name__ == "__main__":
    main()
