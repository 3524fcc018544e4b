"""The home feed called in process: CPU time per request and the memory a shopper leaves kept.

No HTTP: the recommend service (``RecommendService``) over a copy of the Beauty cache that
``bench/serving.py`` prepares (its store and bundle), as the server builds it. Measured:

- ``returning``: microseconds per ``home(user, 20)`` over 1,000 users in turn, each already
  answered once (their candidate lists, union, blend and page are kept), median of ``--passes``
  passes; and the same for ``home(user, 10, offset=10)`` (the second page);
- ``new``: microseconds per ``home`` for users never answered before (every source computes);
- ``kept bytes per new user``: what ``tracemalloc`` sees allocated and still held after
  ``--kept-users`` new users' first home request (caches of every layer; 200 others warm first).

Usage::

    .venv/bin/python bench/home_inprocess.py
    .venv/bin/python bench/home_inprocess.py --passes 3 --kept-users 500
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving as S  # the serving bench: its data cache and user sample

RESULTS = S.ROOT / "bench" / "results" / "home_inprocess.json"


def per_call_us(call: Callable[[str], object], users: list[str]) -> float:
    t0 = time.perf_counter()
    for u in users:
        call(u)
    return 1e6 * (time.perf_counter() - t0) / len(users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--kept-users", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (S.CACHE / "imported.json").is_file():
        raise SystemExit(f"no serving cache at {S.CACHE}: run bench/serving.py once first")
    from shopflow.config import load_settings
    from shopflow.serving.recommend import RecommendService
    from shopflow.store.online import make_online_state
    from shopflow.store.store import Store

    work = Path(tempfile.mkdtemp(prefix="shopflow-home-"))
    data = work / "data"
    shutil.copytree(S.CACHE, data)
    users, _, others = S.sample_ids(data, 1000, 0)
    settings = load_settings(data_dir=data)
    store = Store.from_settings(settings)
    service = RecommendService(store, make_online_state(settings), settings)
    try:
        service.start()
        for u in users:  # first answers: what a returning shopper finds kept
            service.home(u, 20)
            service.home(u, 10, 10)
        first = [per_call_us(lambda u: service.home(u, 20), users) for _ in range(args.passes)]
        second = [per_call_us(lambda u: service.home(u, 10, 10), users) for _ in range(args.passes)]
        fresh = others[: 200 + 2 * args.kept_users]
        new_us = per_call_us(lambda u: service.home(u, 20), fresh[200 + args.kept_users :])
        for u in fresh[:200]:
            service.home(u, 20)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for u in fresh[200 : 200 + args.kept_users]:
            service.home(u, 20)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        kept = sum(d.size_diff for d in after.compare_to(before, "filename")) / args.kept_users
    finally:
        service.close()
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": "python bench/home_inprocess.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "returning_us": round(statistics.median(first), 1),
        "returning_us_passes": [round(x, 1) for x in first],
        "returning_second_page_us": round(statistics.median(second), 1),
        "new_us": round(new_us, 1),
        "kept_bytes_per_new_user": round(kept),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
