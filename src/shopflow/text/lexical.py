"""BM25 that stays fresh under upserts: a main index (bm25s) plus a delta scored at query time.

Rebuilding BM25 over the whole catalogue for every new or edited item costs O(catalogue) per event
(about 0.1 s per 10,000 short titles on one core). Here rows added since the last build form a
*delta*, scored at query time with the same formula bm25s uses (Lucene's variant of BM25: idf
``ln(1 + (N - df + 0.5) / (df + 0.5))``, term part ``tf / (tf + k1 (1 - b + b dl / avgdl))``,
repeated query tokens counted each time) and the main index's statistics (``N``, ``df``, average
length), so a delta row scores exactly as the same text would in the main index; a token the main
index lacks takes its ``df`` from the delta and ``N`` from both. A removed row is cleared at once
(its tokens no longer count in the delta; in the main index the caller masks it). When the delta
and the removed rows together reach ``fold_fraction`` of the main index (at least ``fold_min``
rows), :meth:`LexicalIndex.fold` rebuilds the main index over every live row: the cost of a full
rebuild is paid once per that many changes, not once per change.

Example
-------
>>> lex = LexicalIndex()
>>> lex.append([["red", "shoe"], ["blue", "shirt"]]); _ = lex.fold()
>>> lex.append([["red", "shoe"]])  # in the delta: found at once, scored as row 0 is
>>> lex.delta_rows, [round(float(x), 3) for x in lex.scores(["red"])]
(1, [0.277, 0.0, 0.277])
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from shopflow.text.query import normalise_token

_STOPWORDS_TEXT = (
    "a an and are as at be by for from has in is it its of on or that the this to with"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3040-\u9fff\uf900-\ufaff]")


def lexical_tokens(text: str) -> list[str]:
    """BM25 tokens: lower-cased words, stopwords dropped, plurals folded, CJK as uni- and bigrams.

    >>> lexical_tokens("The Red Shoes, 2-pack")
    ['red', 'shoe', '2', 'pack']
    >>> lexical_tokens("红色跑鞋")
    ['红', '色', '跑', '鞋', '红色', '色跑', '跑鞋']
    """
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = list(word)
            out.extend(chars)
            out.extend(a + b for a, b in itertools.pairwise(chars))
        elif word not in STOPWORDS:
            out.append(normalise_token(word))
    return out


class LexicalIndex:
    """BM25 scores per row (rows are appended, cleared, never renumbered); see the module docstring.

    Parameters
    ----------
    k1, b:
        BM25 parameters.
    fold_fraction, fold_min:
        :meth:`needs_fold` is True once delta rows plus rows removed since the last build reach
        ``max(fold_min, fold_fraction * main rows)``.
    """

    def __init__(
        self, k1: float = 1.5, b: float = 0.75, fold_fraction: float = 0.1, fold_min: int = 500
    ) -> None:
        self.k1, self.b = k1, b
        self.fold_fraction, self.fold_min = fold_fraction, fold_min
        self._tokens: list[list[str]] = []
        self._lock = threading.Lock()
        self._main: Any = None  # bm25s.BM25 over rows [0, _main_rows)
        self._main_rows = 0
        self._main_df: Counter[str] = Counter()
        self._main_avgdl = 1.0
        self._postings: dict[str, dict[int, int]] = {}  # delta: token -> {row: tf}
        self._delta_len: dict[int, int] = {}  # delta: live row -> length
        self._delta_df: Counter[str] = Counter()
        self._removed = 0  # main rows cleared since the last build
        self.last_fold_seconds = 0.0

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def delta_rows(self) -> int:
        """Live rows not yet folded into the main index."""
        return len(self._delta_len)

    def append(self, tokens: Sequence[list[str]]) -> None:
        """Add rows (one token list each) to the delta; they score from the next :meth:`scores`."""
        with self._lock:
            for toks in tokens:
                row = len(self._tokens)
                self._tokens.append(list(toks))
                self._delta_len[row] = len(toks)
                for token, tf in Counter(toks).items():
                    self._postings.setdefault(token, {})[row] = tf
                    self._delta_df[token] += 1

    def clear(self, row: int) -> None:
        """Drop a row's tokens: it matches nothing from the next :meth:`scores` on (main rows: the
        caller masks them until the next fold, their statistics stay counted until then)."""
        with self._lock:
            toks = self._tokens[row]
            if row in self._delta_len:
                del self._delta_len[row]
                for token in set(toks):
                    self._postings[token].pop(row, None)
                    self._delta_df[token] -= 1
            elif toks:
                self._removed += 1
            self._tokens[row] = []

    def needs_fold(self) -> bool:
        """True when the delta and the removed rows are large enough to rebuild the main index."""
        changed = len(self._delta_len) + self._removed
        return changed >= max(self.fold_min, self.fold_fraction * self._main_rows)

    def fold(self) -> float:
        """Rebuild the main index over every row now (the delta becomes empty); seconds taken
        (0 when nothing changed since the last build)."""
        import bm25s

        start = time.perf_counter()
        with self._lock:
            if not self._delta_len and not self._removed and self._main_rows == len(self._tokens):
                return 0.0  # nothing changed since the last build
            rows = list(self._tokens)
        main = None
        df: Counter[str] = Counter()
        if any(rows):
            main = bm25s.BM25(k1=self.k1, b=self.b)
            main.index(rows, show_progress=False)
            for toks in rows:
                df.update(set(toks))
        avgdl = max(sum(len(t) for t in rows) / max(len(rows), 1), 1e-9)
        with self._lock:
            self._main, self._main_rows, self._main_df = main, len(rows), df
            self._main_avgdl = avgdl
            self._removed = 0
            for row in [r for r in self._delta_len if r < len(rows)]:  # folded in
                for token in set(self._tokens[row]):
                    self._postings[token].pop(row, None)
                    self._delta_df[token] -= 1
                del self._delta_len[row]
            self._postings = {t: p for t, p in self._postings.items() if p}
            self._delta_df = +self._delta_df
        self.last_fold_seconds = time.perf_counter() - start
        return self.last_fold_seconds

    def _idf(self, token: str, main_rows: int) -> float:
        df = self._main_df.get(token, 0)
        n_docs = main_rows
        if df == 0:  # a word only the delta holds
            df, n_docs = self._delta_df.get(token, 0), main_rows + len(self._delta_len)
        return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))

    def scores(self, tokens: Sequence[str], n_rows: int | None = None) -> np.ndarray:
        """(n_rows,) BM25 score of each row for the query ``tokens`` (0 where none matches).

        ``n_rows`` (default: every row) lets a caller score a snapshot taken earlier; rows appended
        since are left out.
        """
        with self._lock:
            n = len(self._tokens) if n_rows is None else n_rows
            main, main_rows, avgdl = self._main, self._main_rows, self._main_avgdl
            delta = [
                (t, self._idf(t, main_rows), list(p.items()))
                for t in tokens
                if (p := self._postings.get(t))
            ]
            lengths = {row: self._delta_len[row] for _, _, p in delta for row, _ in p}
        out = np.zeros(n, dtype=np.float32)
        known = [t for t in tokens if main is not None and t in main.vocab_dict]
        if known:
            m = min(main_rows, n)
            out[:m] = np.asarray(main.get_scores(known), dtype=np.float32)[:m]
        k1, b = self.k1, self.b
        for _, idf, posting in delta:
            for row, tf in posting:
                if row < n:
                    norm = k1 * (1.0 - b + b * lengths[row] / avgdl)
                    out[row] += idf * tf / (tf + norm)
        return out
