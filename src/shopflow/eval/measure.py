"""Wall time and peak memory of a phase, and a description of the machine, for evaluation reports.

Peak memory is the process's resident-set high-water mark, reset before the phase through
``/proc/self/clear_refs`` (Linux); where that is not possible, tracemalloc's peak of Python and
numpy allocations. :func:`memory_text` says which one a report's numbers are.

Example
-------
>>> import numpy as np
>>> with measure() as cost:
...     block = np.ones(1_000_000)
>>> cost[0].seconds >= 0
True
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _proc_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM (the resident-set high-water mark) to the current RSS
        return _proc_kb("VmHWM") is not None
    except OSError:
        return False


@functools.cache
def memory_by_rss() -> bool:
    """Whether the resident-set peak can be reset here (Linux); else tracemalloc is used."""
    return _can_reset_peak()


def memory_text() -> str:
    """What the peak-memory figures mean on this machine (every report says it)."""
    if memory_by_rss():
        return (
            "Peak memory: the process's resident-set high-water mark (VmHWM in /proc/self/status) "
            "during the phase, reset through /proc/self/clear_refs before it; it includes the data "
            "already loaded, and 'above start' subtracts the resident set when the phase began."
        )
    return (
        "Peak memory: tracemalloc's peak of Python and numpy allocations during the phase (memory "
        "allocated natively by BLAS, implicit or torch is not seen); 'above start' is the same."
    )


@dataclass(frozen=True)
class Cost:
    """Wall time, CPU time and peak memory of one phase (see :func:`memory_text`).

    ``cpu_seconds`` is the process's user + system time over every thread (``time.process_time``):
    on a machine shared with other work it is the steadier figure; above ``seconds`` when several
    threads ran at once.
    """

    seconds: float
    peak_mb: float
    above_start_mb: float
    cpu_seconds: float = float("nan")


@contextmanager
def measure() -> Iterator[list[Cost]]:
    """Time and peak memory of the block; the :class:`Cost` is appended to the yielded list."""
    out: list[Cost] = []
    by_rss = memory_by_rss()
    if by_rss:
        _can_reset_peak()
        start_kb = _proc_kb("VmRSS") or 0
    else:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if by_rss:
            peak_kb = _proc_kb("VmHWM") or 0
            out.append(Cost(seconds, peak_kb / 1024, (peak_kb - start_kb) / 1024, cpu))
        else:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            out.append(Cost(seconds, peak, peak, cpu))


def machine_info() -> dict[str, Any]:
    """CPU count, load when the result was made (other processes inflate wall times), platform,
    library versions and GPU of this process."""
    import numpy

    gpu = "none" if not Path("/dev/nvidia0").exists() else "an NVIDIA device"
    torch = sys.modules.get("torch")  # not imported here only to look: that takes seconds
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "gpu": gpu,
    }
