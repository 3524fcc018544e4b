"""BM25 with a delta: fresh rows score as after a full rebuild, with no rebuild per change."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.text.lexical import LexicalIndex, lexical_tokens

TITLES = [
    "Trail running shoe with grippy sole",
    "Leather oxford dress shoe",
    "Organic cotton crew neck t-shirt",
    "Cast iron skillet 12 inch",
    "Stainless steel chef knife",
    "Electric kettle with temperature control",
    "Cordless hedge trimmer",
    "Garden hose reel 50 ft",
]


def _index(titles: list[str], **kwargs: float) -> LexicalIndex:
    lex = LexicalIndex(**kwargs)  # type: ignore[arg-type]
    lex.append([lexical_tokens(t) for t in titles])
    lex.fold()
    return lex


def test_a_delta_row_scores_as_the_same_text_in_the_main_index() -> None:
    lex = _index(TITLES)
    lex.append([lexical_tokens(TITLES[0])])  # a twin of row 0, in the delta
    assert lex.delta_rows == 1
    for query in ("running shoe", "shoe shoe sole", "grippy trail"):
        scores = lex.scores(lexical_tokens(query))
        assert scores[0] > 0
        assert scores[-1] == pytest.approx(scores[0], rel=1e-6)


def test_main_scores_match_bm25s_and_fold_equals_a_fresh_build() -> None:
    import bm25s

    lex = _index(TITLES[:5])
    lex.append([lexical_tokens(t) for t in TITLES[5:]])
    assert lex.delta_rows == 3
    lex.fold()
    assert lex.delta_rows == 0
    ref = bm25s.BM25()
    ref.index([lexical_tokens(t) for t in TITLES], show_progress=False)
    for query in ("garden hose", "steel knife", "shoe"):
        np.testing.assert_allclose(
            lex.scores(lexical_tokens(query)), ref.get_scores(lexical_tokens(query)), rtol=1e-6
        )


def test_words_only_the_delta_knows_are_found() -> None:
    lex = _index(TITLES)
    lex.append([lexical_tokens("Glow in the dark unicorn night lamp")])
    scores = lex.scores(lexical_tokens("unicorn lamp"))
    assert np.flatnonzero(scores).tolist() == [len(TITLES)]


def test_cleared_delta_rows_match_nothing_and_fold_only_when_enough_changed() -> None:
    lex = _index(TITLES, fold_fraction=0.25, fold_min=3)
    lex.append([lexical_tokens("unicorn lamp")])
    lex.clear(len(TITLES))
    assert lex.delta_rows == 0 and not lex.scores(["unicorn"]).any()
    assert not lex.needs_fold()
    lex.clear(0)  # a main row: the caller masks it until the next fold
    lex.append([lexical_tokens("solar lantern"), lexical_tokens("brass lantern")])
    assert lex.needs_fold()  # 2 delta rows + 1 removed >= max(3, 0.25 * 8)
    assert lex.fold() > 0 and not lex.needs_fold()
    assert lex.scores(["trail"])[0] == 0  # row 0 cleared: gone from the rebuilt index
    assert lex.fold() == 0.0  # nothing changed since


def test_scores_of_a_snapshot_leave_out_later_rows() -> None:
    lex = _index(TITLES)
    n = len(lex)
    lex.append([lexical_tokens("Leather dress shoe")])
    assert len(lex.scores(["shoe"], n_rows=n)) == n
    assert len(lex.scores(["shoe"])) == n + 1
