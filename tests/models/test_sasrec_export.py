"""Serving paths of the sequential model: ONNX parity, int8 agreement, one encoder interface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.sasrec_export import (
    TorchInt8Encoder,
    export_all,
    export_onnx,
    quantize_onnx,
)
from shopflow.models.sasrec_model import SASRecModel
from shopflow.models.sasrec_runtime import Encoder, OnnxEncoder, pad_histories, recommend
from shopflow.retrieval import ExactIndex
from shopflow.store.idmap import IdMap

torch.set_num_threads(1)
N_ITEMS = 120
MAX_LEN = 12


def _data(seed: int = 0) -> InteractionData:
    """Item i is followed by i + 1 (mod N) 90% of the time; brands and categories by id."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(600):
        s = [int(rng.integers(N_ITEMS))]
        for _ in range(int(rng.integers(4, 14)) - 1):
            nxt = (s[-1] + 1) % N_ITEMS if rng.random() < 0.9 else int(rng.integers(N_ITEMS))
            s.append(nxt)
        seqs.append(np.array(s, dtype=np.int64))
    side = ItemSide(
        brand=[f"brand{i % 7}" for i in range(N_ITEMS)],
        categories=[["Beauty", f"shelf{i % 4}"] for i in range(N_ITEMS)],
    )
    return InteractionData(
        "succ",
        IdMap([f"u{u}" for u in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(N_ITEMS)]),
        seqs,
        side=side,
    )


@pytest.fixture(scope="module")
def model() -> SASRecModel:
    """Two layers, two heads, relative bias and side tokens: every path of the network."""
    torch.manual_seed(0)
    return SASRecModel(
        hidden=32,
        n_layers=2,
        n_heads=2,
        max_len=MAX_LEN,
        rel_bias=True,
        side_tokens=True,
        dropout=0.1,
        attn_dropout=0.1,
        epochs=15,
        lr=5e-3,
        batch_size=32,
        validation=False,
        device="cpu",
    ).fit(_data())


@pytest.fixture(scope="module")
def exported(model: SASRecModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return export_all(model, tmp_path_factory.mktemp("export"))


def _histories(seed: int, n: int) -> list[np.ndarray]:
    """Random histories of every length from 0 to beyond max_len, some with unknown ids."""
    rng = np.random.default_rng(seed)
    out = [np.array([], dtype=np.int64), np.array([7]), rng.integers(0, N_ITEMS, 3 * MAX_LEN)]
    out.append(np.array([5, N_ITEMS + 3, -1, 6]))  # unknown ids are skipped
    out += [rng.integers(0, N_ITEMS, int(rng.integers(1, MAX_LEN + 1))) for _ in range(n)]
    return out


def test_model_with_side_tokens_exports(model: SASRecModel, exported: dict[str, Path]) -> None:
    assert model.vocab and model.net is not None and model.net.items.tokens is not None
    encoder = OnnxEncoder(exported["onnx"])
    assert (encoder.n_items, encoder.max_len, encoder.hidden) == (N_ITEMS, MAX_LEN, 32)
    np.testing.assert_array_equal(np.load(exported["item_vectors"]), model.item_vectors())


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_onnx_states_equal_torch_eval_states(
    model: SASRecModel, exported: dict[str, Path], batch: int
) -> None:
    encoder = OnnxEncoder(exported["onnx"])
    hists = _histories(batch, batch)
    for lo in range(0, len(hists), batch):  # every batch has its own padded width
        chunk = hists[lo : lo + batch]
        np.testing.assert_allclose(encoder.encode(chunk), model.encode(chunk), atol=1e-4, rtol=0)
    one = [np.array([11])]
    np.testing.assert_allclose(encoder.encode(one), model.encode(one), atol=1e-4, rtol=0)
    assert not np.any(encoder.encode([np.array([], dtype=np.int64)]))  # empty → zero state


def test_one_user_requests_equal_batched_ones(exported: dict[str, Path]) -> None:
    encoder = OnnxEncoder(exported["onnx"])
    hists = _histories(3, 10)
    batched = encoder.encode(hists)
    single = np.concatenate([encoder.encode([h]) for h in hists])
    np.testing.assert_allclose(single, batched, atol=1e-5, rtol=0)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def test_int8_top10_agrees_with_the_exact_top10(
    model: SASRecModel, exported: dict[str, Path]
) -> None:
    index = ExactIndex().build(model.item_vectors())
    hists = _histories(5, 300)[1:]
    want, _ = recommend(model, index, hists, k=10)
    for encoder in (OnnxEncoder(exported["int8"]), TorchInt8Encoder(model)):
        got, _ = recommend(encoder, index, hists, k=10)
        assert _overlap(got, want) >= 0.8, type(encoder).__name__
        assert np.mean(got[:, 0] == want[:, 0]) >= 0.95, type(encoder).__name__
    assert exported["int8"].stat().st_size < exported["onnx"].stat().st_size


def test_every_path_is_an_encoder_and_ranks_the_planted_successor(
    model: SASRecModel, exported: dict[str, Path]
) -> None:
    index = ExactIndex().build(model.item_vectors())
    paths = [model, OnnxEncoder(exported["onnx"]), OnnxEncoder(exported["int8"])]
    paths.append(TorchInt8Encoder(model))
    hists = [np.array([i, (i + 1) % N_ITEMS]) for i in range(0, N_ITEMS, 3)]
    for encoder in paths:
        assert isinstance(encoder, Encoder)
        ids, _ = recommend(encoder, index, hists, k=1)
        acc = np.mean(ids[:, 0] == [(int(h[-1]) + 1) % N_ITEMS for h in hists])
        assert acc >= 0.9, type(encoder).__name__


def test_pad_histories_matches_the_model_input() -> None:
    from shopflow.models.sasrec import pad_left

    hists = _histories(9, 20)
    kept = [h[(h >= 0) & (h < N_ITEMS)] for h in hists]
    np.testing.assert_array_equal(
        pad_histories(hists, N_ITEMS, MAX_LEN), pad_left(kept, MAX_LEN).numpy()
    )


def test_onnx_serving_needs_no_torch(exported: dict[str, Path], model: SASRecModel) -> None:
    code = (
        "import json, sys, numpy as np\n"
        "from shopflow.models.sasrec_runtime import OnnxEncoder\n"
        f"e = OnnxEncoder({str(exported['onnx'])!r})\n"
        "print(json.dumps(e.encode([np.array([3, 4, 5])])[0].tolist()))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    state = np.array(json.loads(out.stdout), dtype=np.float32)
    np.testing.assert_allclose(state, model.encode([np.array([3, 4, 5])])[0], atol=1e-4)


def test_bad_inputs_are_refused(tmp_path: Path, exported: dict[str, Path]) -> None:
    import onnx

    with pytest.raises(ValueError, match="not trained"):
        export_onnx(SASRecModel(), tmp_path / "x.onnx")
    proto = onnx.load(str(exported["onnx"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="lacks metadata"):
        OnnxEncoder(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="lacks metadata"):
        quantize_onnx(tmp_path / "bare.onnx", tmp_path / "bare8.onnx")
