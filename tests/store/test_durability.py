"""Nothing acknowledged is ever lost: kill -9 a writer mid-run, then look at what the database has.

(a) A process appends batches through ``EventLog.append`` and prints each batch's ids only after
``append`` returned; SIGKILL lands while it writes. Every acknowledged id must be in the file
exactly once, and every batch must be there completely or not at all.
(b) The same through the real ``shopflow import csv`` command, then a re-run that must complete the
import with every good row exactly once.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APPENDER = textwrap.dedent(
    """
    import sys
    from shopflow.ingest.schema import Event
    from shopflow.store.store import Store

    url, run, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store.from_url(url)  # synchronous=FULL, the default
    for b in range(100_000):
        batch = [Event(event_id=f"{run}-{b}-{i}", type="view", user_id=f"u{i % 13}",
                       item_id=f"i{i}", timestamp=1_700_000_000 + b) for i in range(size)]
        result = store.events.append(batch)
        sys.stdout.write(f"ack {b} {','.join(result.accepted_ids)}\\n")
        sys.stdout.flush()
    """
)


def shopflow_cli() -> list[str]:
    return [sys.executable, "-m", "shopflow.cli"]


def read_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [r[0] for r in conn.execute("SELECT event_id FROM events")]


def test_acknowledged_batches_survive_sigkill_whole_and_once(tmp_path: Path) -> None:
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    db = tmp_path / "log.db"
    size = 1_500
    acked: dict[str, list[str]] = {}
    for run, (wait_acks, extra_sleep) in enumerate([(3, 0.0), (4, 0.07), (5, 0.19)]):
        proc = subprocess.Popen(
            [sys.executable, str(script), f"sqlite:///{db}", f"r{run}", str(size)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(wait_acks):
            line = proc.stdout.readline()
            assert line.startswith("ack "), f"appender died early: {line!r}"
            _, b, ids = line.split()
            acked[f"r{run}-{b}"] = ids.split(",")
        time.sleep(extra_sleep)  # land the kill at different points of the next append
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        for line in proc.stdout.read().splitlines(keepends=True):  # acks still in the pipe
            if line.endswith("\n"):
                _, b, ids = line.split()
                acked[f"r{run}-{b}"] = ids.split(",")
    ids = read_ids(db)
    assert len(ids) == len(set(ids))  # nothing twice
    present = set(ids)
    for batch, batch_ids in acked.items():
        assert len(batch_ids) == size
        assert set(batch_ids) <= present, f"acknowledged batch {batch} lost"
    per_batch: dict[str, int] = {}
    for event_id in ids:
        run, b, _ = event_id.split("-")
        per_batch[f"{run}-{b}"] = per_batch.get(f"{run}-{b}", 0) + 1
    assert set(per_batch.values()) == {size}, "a batch was written in part"
    # at most the batch in flight when killed was committed without its ack, once per run
    assert len(acked) <= len(per_batch) <= len(acked) + 3


def test_killed_import_then_rerun_gives_every_good_row_once(tmp_path: Path) -> None:
    n, batch = 20_000, 200
    bad = {i for i in range(n) if i % 997 == 5}  # unknown type: rejected, never stored
    lines = ["id,visitor,sku,ts,event"]
    for i in range(n):
        kind = "teleport" if i in bad else ("view", "add_to_cart", "purchase")[i % 3]
        lines.append(f"e{i},u{i % 101},s{i % 503},{1_714_557_600 + i},{kind}")
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join(lines) + "\n")
    good = [f"e{i}" for i in range(n) if i not in bad]
    db = tmp_path / "shop.db"
    args = [
        *shopflow_cli(),
        "import",
        "csv",
        str(path),
        "--database-url",
        f"sqlite:///{db}",
        "--batch-size",
        str(batch),
        "--no-progress",
        "--map",
        "event_id=id",
        "--map",
        "user_id=visitor",
        "--map",
        "item_id=sku",
        "--map",
        "timestamp=ts",
        "--map",
        "type=event",
    ]
    env = {**os.environ, "SHOPFLOW_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while _count(db) < 3 * batch:
        assert proc.poll() is None, f"import ended before it could be killed:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "import made no progress in 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    ids = read_ids(db)
    assert len(ids) == len(set(ids))
    assert 0 < len(ids) < len(good), "the kill should land mid-import"
    # What is there is exactly the good rows of whole batches: a prefix of the file, no holes.
    last = max(int(i[1:]) for i in ids)
    boundary = math.ceil((last + 1) / batch) * batch
    assert set(ids) == {g for g in good if int(g[1:]) < boundary}

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = read_ids(db)
    assert len(final) == len(set(final)) == len(good)
    assert set(final) == set(good)
    expected = f"{len(good) - len(ids):,}", f"{len(ids):,}", f"{len(bad):,}"
    assert _table_counts(rerun.stdout) == expected


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _table_counts(output: str) -> tuple[str, ...]:
    import re

    m = re.search(r"events\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│", output)
    assert m, output
    return m.groups()
