"""TextEncoder: a real encoding with the packaged MiniLM, the SHA-256 cache, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopflow.errors import ConfigError
from shopflow.text.encoder import TextEncoder, default_model_path, text_key

pytestmark = pytest.mark.slow  # importing sentence-transformers and loading the model takes seconds


def test_default_model_is_the_packaged_minilm() -> None:
    path = default_model_path()
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    enc = TextEncoder()
    v = enc.encode(
        ["red matte lipstick", "crimson lip colour with a matte finish", "cordless power drill"]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert v[0] @ v[1] > v[1] @ v[2] + 0.2


def test_cache_avoids_re_encoding(tmp_path: Path) -> None:
    enc = TextEncoder(cache_dir=tmp_path)
    first = enc.encode(["blue towel", "green tea", "blue towel"])
    assert enc.n_encoded == 2  # the repeated text is encoded once
    again = enc.encode(["green tea", "blue towel", "garden hose"])
    assert enc.n_encoded == 3  # only the new text
    np.testing.assert_array_equal(again[:2], first[[1, 0]])
    # A new encoder (say, another process) reads the on-disk cache instead of the model.
    other = TextEncoder(cache_dir=tmp_path)
    np.testing.assert_array_equal(other.encode(["garden hose", "blue towel"]), again[[2, 1]])
    assert other.n_encoded == 0
    assert len(text_key("garden hose")) == 64


def test_empty_input() -> None:
    assert TextEncoder().encode([]).shape == (0, 384)


def test_unknown_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TextEncoder(model=str(tmp_path / "no-such-model")).encode(["x"])


def test_unknown_model_name_without_network_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="without network"):
        TextEncoder(model="no-such-org/no-such-model").encode(["x"])
