"""What a user's state says to search, and what their searches say to the home feed.

:func:`user_taste` turns a :class:`~shopflow.serving.state.UserView` into the
:class:`~shopflow.text.personal.UserTaste` that re-ranks search results: the text profile of the
recent items (hybrid search only), the shares of brands and leaf categories in the history
(event-type weighted), and the sequential model's scores after the history (when the bundle has
one; items it does not know score NaN and count 0).

:func:`searched_hits` is the other direction: the user's latest queries of the current session
(``search`` events) are run through the search index again and their results become the ``searched``
candidate source of the home feed, with the query as evidence ("Because you searched for “tent”").
A query weighs ``decay ** (its age in queries)``, the latest 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shopflow.retrieval.merge import SourceHits, aggregate
from shopflow.serving.state import ServingState, UserView
from shopflow.text.personal import UserTaste, shares

EMPTY = np.empty(0, dtype=np.int64)


def user_taste(st: ServingState, u: UserView, dense: bool) -> UserTaste | None:
    """The user's taste for search re-ranking; None without consent or history."""
    if not u.personal or not len(u.history):
        return None
    src, t = st.sources, st.table
    hist, w = u.history, u.weights
    vector = src.profile(hist, w) if dense else None
    brands = shares([t.brand_name(int(i)) for i in hist], w)
    leaves = shares([t.leaf_name(int(i)) for i in hist], w)
    model_scores = None
    sasrec, vectors = src.sasrec, src.seq_vectors
    if sasrec is not None and vectors is not None:
        known = hist[hist < len(vectors)]
        if len(known):
            import torch

            with torch.inference_mode():
                state = np.asarray(sasrec.encode([known])[0], dtype=np.float32)  # (D,)

            def model_scores(item_ids: Sequence[str]) -> np.ndarray:
                idx = t.ids.to_index(item_ids, missing=-1)
                ok = (idx >= 0) & (idx < len(vectors))
                out = np.full(len(idx), np.nan)
                out[ok] = vectors[idx[ok]] @ state
                return out

    return UserTaste(vector=vector, brands=brands, categories=leaves, model_scores=model_scores)


def searched_hits(
    st: ServingState,
    encoder: Any | None,
    queries: Sequence[str],
    k: int,
    max_queries: int = 2,
    decay: float = 0.5,
) -> SourceHits:
    """Items found by the user's latest ``queries`` (oldest first); evidence: the index of the
    query in ``queries``."""
    if not queries or k <= 0:
        return SourceHits("searched", EMPTY, EMPTY)
    from shopflow.text.query import parse_query

    dense = encoder is not None and st.sources.text is not None
    index, vocab = st.search_index(encoder if dense else None)
    parts, scores, evidence = [], [], []
    latest = list(enumerate(queries))[-max_queries:]
    for age, (pos, query) in enumerate(reversed(latest)):
        found = index.search(parse_query(query, vocab), k)
        if not dense:  # a lexical-only index ties every item on the dense half
            found = [h for h in found if "lexical" in h.parts]
        idx = st.table.ids.to_index((h.item_id for h in found), missing=-1)
        ok = idx >= 0
        if ok.any():
            parts.append(idx[ok])
            scores.append(np.array([h.score for h in found])[ok] * decay**age)
            evidence.append(pos)
    items, total, ev = aggregate(parts, scores, evidence)
    return SourceHits("searched", items[:k], total[:k], ev[:k])
