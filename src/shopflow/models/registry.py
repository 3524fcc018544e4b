"""The one list of models (DESIGN.md §4): a name → class dict, no registration on import.

A new model is one file plus one line here.

Example
-------
>>> sorted(MODELS)[:3]
['als', 'bpr', 'content']
>>> get_model("covisit", window=3).config.window
3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopflow.errors import NotFound
from shopflow.models.base import MANIFEST, Recommender
from shopflow.models.content import ContentBased
from shopflow.models.covisit import CoVisitation
from shopflow.models.itemknn import ItemKNN
from shopflow.models.mf import ALS, BPR
from shopflow.models.popular import Popular, Trending
from shopflow.models.sasrec_model import SASRecModel

MODELS: dict[str, type[Recommender]] = {
    "pop": Popular,
    "trending": Trending,
    "covisit": CoVisitation,
    "itemknn": ItemKNN,
    "als": ALS,
    "bpr": BPR,
    "content": ContentBased,
    "sasrec": SASRecModel,
}


def get_model(name: str, **overrides: Any) -> Recommender:
    """A new, unfitted model ``name`` with config ``overrides``.

    Unknown names raise :class:`~shopflow.errors.NotFound` listing the known ones; unknown settings
    raise ``TypeError`` listing the model's settings.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise NotFound(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None
    return cls(**overrides)


def load_model(path: str | Path) -> Recommender:
    """Load a saved model directory, whichever model it holds (read from its manifest)."""
    manifest = json.loads((Path(path) / MANIFEST).read_text())
    name = manifest.get("model")
    if name not in MODELS:
        raise NotFound(
            f"{path} holds a model {name!r} this version does not know; known models: "
            f"{', '.join(sorted(MODELS))}"
        )
    return MODELS[name].load(path)
