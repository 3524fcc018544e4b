"""The numpy user state of the sequential model equals the torch network's (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopflow.models.sasrec import SASRec, SASRecConfig, pad_left
from shopflow.retrieval.seq_encoder import numpy_encoder

CONFIGS = [
    {"hidden": 16, "n_layers": 1, "n_heads": 1},
    {"hidden": 32, "n_layers": 2, "n_heads": 2},
    {"hidden": 24, "n_layers": 3, "n_heads": 3, "rel_bias": True},
    {"hidden": 16, "n_layers": 2, "n_heads": 2, "side_tokens": True},
]


def net_of(cfg: dict, n_items: int = 40, seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    tokens = None
    if cfg.get("side_tokens"):
        tokens = torch.randint(0, 7, (n_items + 1, 3))
        tokens[0] = 0
    net = SASRec(SASRecConfig(max_len=12, **cfg), n_items, tokens=tokens, n_tokens=7)
    with torch.no_grad():  # trained-looking weights: not the near-zero initial ones
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_numpy_state_equals_the_torch_state(cfg: dict) -> None:
    net = net_of(cfg)
    enc = numpy_encoder(net)
    assert enc is not None
    rng = np.random.default_rng(3)
    for length in (1, 2, 5, 12, 30):  # 30 > max_len: the last 12 count
        h = rng.integers(0, 40, length)
        with torch.inference_mode():
            ref = net.encode(pad_left([h], 12))[0].numpy()
        assert np.allclose(enc.encode(h), ref, atol=2e-5), length


def test_items_outside_the_catalogue_are_skipped_and_empty_is_zero() -> None:
    net = net_of(CONFIGS[1])
    enc = numpy_encoder(net)
    assert enc is not None
    h = np.array([3, 99, 5, -1, 8])
    with torch.inference_mode():
        ref = net.encode(pad_left([np.array([3, 5, 8])], 12))[0].numpy()
    assert np.allclose(enc.encode(h), ref, atol=2e-5)
    assert not enc.encode(np.array([], dtype=np.int64)).any()


def test_a_network_with_unknown_parts_keeps_the_torch_path() -> None:
    net = net_of(CONFIGS[0])
    net.blocks[0].extra = torch.nn.Linear(16, 16)  # something this encoder does not compute
    assert numpy_encoder(net) is None
