"""Garbage-collector pauses of the serving process, and the home feed's tail latency beside them.

The server of ``bench/serving.py`` (one uvicorn worker, the Beauty cache, API keys on) runs with a
``gc.callbacks`` hook that times the collections (of the youngest generation, those of 1 ms or
more). The load, in
rounds: ``home`` for 1,000 returning users (``wrk``, 16 connections), the same while 100 events a
second of other shoppers flow (``home_live``), ``home_new`` for users never asked before, then
``ingest`` (batches of 100 events of 1,000 other shoppers, 4 in flight) — the
long-lived objects that requests and events leave behind are what full collections walk. Printed:
per round the home feed's throughput and p99 (quiet and live) and the new users' p99; over the
run, per generation, the number of collections (of the youngest, those of 1 ms or more), the
longest, their total time and how many took over 10 ms (from the end of the warm-up on: the start's
own full collection, ``settle_heap``, is not counted).

Usage::

    .venv/bin/python bench/gc_pauses.py                 # 4 rounds, 5 s of home each
    .venv/bin/python bench/gc_pauses.py --rounds 2 --seconds 3

Needs the cache that ``bench/serving.py`` prepares (run it once first) and ``wrk``.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving as S  # the serving bench: its server, data and load generators

RESULTS = S.ROOT / "bench" / "results" / "gc_pauses.json"


def serve(data_dir: str, port: int, log_path: str) -> None:
    """In the server subprocess: time every collection of generations 1 and 2, then serve."""
    out = open(log_path, "w", buffering=1)  # noqa: SIM115 (open for the process's life)
    started: list[float] = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            ms = 1000 * (time.perf_counter() - started[0])
            if info["generation"] >= 1 or ms >= 1.0:  # the youngest's many short passes: not kept
                out.write(
                    json.dumps({"gen": info["generation"], "ms": ms, "t": time.time()}) + "\n"
                )

    gc.callbacks.append(timed)
    S.serve(data_dir, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="Home per round.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    if shutil.which("wrk") is None:
        raise SystemExit(S.WRK_MISSING)
    if not (S.CACHE / "imported.json").is_file():
        raise SystemExit(f"no serving cache at {S.CACHE}: run bench/serving.py once first")
    work = Path(tempfile.mkdtemp(prefix="shopflow-gc-"))
    shutil.copytree(S.CACHE, work / "data")
    users, items, others = S.sample_ids(work / "data", 1000, 0)
    log_path = work / "gc.jsonl"
    serve_args = [sys.executable, __file__, "--serve", str(work / "data")]
    proc, base = S.start_server(work / "data", lambda port: [*serve_args, str(port), str(log_path)])
    home = [S.HOME.format(user_id=u) + "?scenario=home&n=20" for u in users]
    new = [S.HOME.format(user_id=u) + "?scenario=home&n=20" for u in others]
    shoppers = [f"bench-shopper-{k}" for k in range(1_000)]
    rounds, at = [], 0
    try:
        S.wrk(base, home, 16, 3)  # warm: every returning user once
        time.sleep(3)  # the watcher's first freeze after the warm-up
        since = time.time()  # collections before (the start's own full collection) not counted
        for r in range(args.rounds):
            h = S.wrk(base, home, 16, args.seconds)
            live = S.wrk_live(base, home, 16, args.seconds, r, items)
            n = S.wrk(base, new, 16, 3, at)
            at += int(n["requests"])
            i = S.ingest(base, shoppers, items, 3, r)
            rounds.append(
                {
                    "home_rps": round(h["rps"]),
                    "home_p99_ms": h["p99_ms"],
                    "home_live_p99_ms": live["p99_ms"],
                    "new_p99_ms": n["p99_ms"],
                    "ingest_events_per_s": round(i["events_per_s"]),
                }
            )
            print(json.dumps({"round": r + 1, **rounds[-1]}), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    pauses = [json.loads(line) for line in log_path.read_text().splitlines()]
    pauses = [p for p in pauses if p["t"] >= since]
    report: dict[str, Any] = {
        "command": "python bench/gc_pauses.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rounds": rounds,
    }
    for gen in (0, 1, 2):  # generation 0: only its passes of 1 ms or more
        ms = [p["ms"] for p in pauses if p["gen"] == gen]
        report[f"gen{gen}"] = {
            "passes": len(ms),
            "max_ms": round(max(ms, default=0.0), 1),
            "total_ms": round(sum(ms), 1),
            "over_10ms": sum(m > 10 for m in ms),
        }
    shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rounds"}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
