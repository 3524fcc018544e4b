"""How much of the time budget a torch model may use in ``shopflow train``, and on how many threads.

:func:`shopflow.train.train_bundle` fits the torch models last, with what is left of the budget.
Before fitting one it times a few training steps (:func:`epoch_seconds`) and caps the model's
``max_seconds`` so that training ends in time, or leaves the model out when not even one epoch
fits (:func:`cap_training`). Torch work runs inside :func:`torch_threads`, which keeps it off the
cores other processes are using. Kept apart from ``train`` because these helpers are about torch
and the machine, not about the run's steps; the text encoding in ``train_data`` uses
:func:`torch_threads` too.

Example
-------
>>> epoch = 1.2 * epoch_seconds(model.config, data)                  # doctest: +SKIP
>>> cap_training(model, seconds=300.0, epoch=epoch)                  # doctest: +SKIP
>>> with torch_threads():                                            # doctest: +SKIP
...     model.fit(data)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any

import numpy as np

from shopflow.features.sequences import InteractionData
from shopflow.models.base import Recommender


def epoch_seconds(config: Any, data: InteractionData, rows: int = 32, steps: int = 2) -> float:
    """About how long one sasrec epoch on ``data`` takes here, from the high side: a few warm
    training steps on ``rows`` random full-width windows, scaled to the epoch's tokens."""
    import torch

    from shopflow.models.losses import full_softmax_ce
    from shopflow.models.sasrec import SASRec, SASRecConfig
    from shopflow.models.sasrec_train import pick_device

    lengths = np.array([len(s) for s in data.sequences], dtype=np.int64)
    targets = int((lengths[lengths >= 2] - 1).sum())  # one per item after a user's first
    if targets == 0:
        return 0.0
    t = config.max_len
    net_cfg = SASRecConfig(**{f.name: getattr(config, f.name) for f in fields(SASRecConfig)})
    device = pick_device(config.device)  # time it where it will train
    net = SASRec(replace(net_cfg, side_tokens=False, side_text=False), data.n_items).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, data.n_items + 1, (rows, t), generator=gen).to(device)  # (rows, T)
    y = torch.randint(0, data.n_items, (rows, t), generator=gen).to(device)  # (rows, T)
    opt = torch.optim.AdamW(net.train().parameters(), lr=1e-3)
    with torch_threads():
        for step in range(steps + 1):
            if step == 1:  # the first step pays for one-off set-up
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            loss = full_softmax_ce(net(x), y, net.item_table())
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    per_token = (time.perf_counter() - start) / steps / (rows * t)
    return per_token * targets


@contextmanager
def torch_threads() -> Iterator[int]:
    """Torch threads limited to the cores not already busy (1-min load average), at least one.

    On a shared host spinning threads that wait for a busy core make torch several times slower
    than one thread (measured: a sasrec epoch took 52 s on 2 threads, 15 s on 1, at load 10 on 2
    cores; MiniLM encoded 6.8 texts/s on 2 threads, 10.4 on 1).
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


def cap_training(model: Recommender, seconds: float, epoch: float) -> str | None:
    """Cap a torch model so that its training ends within ``seconds``, given about ``epoch`` seconds
    per epoch (it stops after the epoch that passes ``max_seconds``); the reason when not even one
    epoch fits."""
    if epoch > seconds:
        return f"one epoch takes about {epoch:.0f} s; {max(seconds, 0):.0f} s of the budget left"
    cap = getattr(model.config, "max_seconds", None)
    limit = max(seconds - epoch, 1e-3)
    model.config.max_seconds = limit if cap is None else min(cap, limit)  # type: ignore[attr-defined]
    return None
