"""Review sentiment: a score in [-1, 1] per review, per language, and a shrunk mean per item.

Scorers (explicit registry :data:`SCORERS`):

- ``vader``: the VADER lexicon (Hutto & Gilbert, ICWSM 2014), English; its ``compound`` score.
- ``snownlp``: SnowNLP's naive-Bayes sentiment model (ships with the package), Chinese; ``2p - 1``.
- ``ngram``: logistic regression over hashed character 1–3-grams, trained on labelled reviews by
  :func:`train_ngram_classifier` and cached as a small ``.npz`` (no pickle) under the data dir.
- ``embedding``: logistic regression over the sentence encoder's embeddings (any encoder with
  ``encode(texts) -> (n, d)``).

:meth:`ReviewSentiment.default` routes each review by language (share of CJK characters): English to
VADER, Chinese to the trained n-gram classifier when its file exists and to SnowNLP otherwise:
the better of the candidates that ``bench/text.py`` measures. A fresh machine without the datasets
still gets working lexicon scores.

Example
-------
>>> agg = ItemSentiment(prior_mean=0.0, prior_strength=5.0)
>>> for s in (1.0, 1.0, 1.0):
...     _ = agg.add("i1", s)
>>> round(agg.get("i1").shrunk_mean, 3)  # three raves do not make a perfect item
0.375
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from shopflow.config import Settings
from shopflow.errors import DatasetMissing, ModelNotTrained

log = logging.getLogger(__name__)

ZH_MODEL_FILE = "sentiment-zh-ngram.npz"
NGRAM_FEATURES = 2**20


class SentimentScorer(Protocol):
    """Anything that scores texts in [-1, 1] (negative to positive)."""

    def score_many(self, texts: Sequence[str]) -> np.ndarray: ...


class Encoder(Protocol):
    """The part of :class:`shopflow.text.encoder.TextEncoder` used here."""

    def encode(
        self, texts: list[str], batch_size: int = ..., show_progress: bool = ...
    ) -> np.ndarray: ...


def cjk_share(text: str) -> float:
    """Share of CJK ideographs and kana among the letters of ``text`` (0 when it has none)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    cjk = sum(1 for c in letters if "\u3040" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return cjk / len(letters)


def detect_language(text: str, cjk_threshold: float = 0.2) -> str:
    """``"zh"`` when at least ``cjk_threshold`` of the letters are CJK, else ``"en"``."""
    return "zh" if cjk_share(text) >= cjk_threshold else "en"


def star_score(stars: float, scale_max: float = 5.0) -> float:
    """Map a star rating on 1..``scale_max`` to [-1, 1] (the middle of the scale is 0)."""
    mid = (1.0 + scale_max) / 2.0
    return float(np.clip((stars - mid) / (scale_max - mid), -1.0, 1.0))


class VaderScorer:
    """VADER's compound score (English lexicon and rules)."""

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ImportError("vaderSentiment is missing: `pip install vaderSentiment`") from exc
        self._analyzer = SentimentIntensityAnalyzer()

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        return np.array(
            [self._analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float32
        )


class SnowNLPScorer:
    """SnowNLP's sentiment probability, mapped to ``2p - 1`` (Chinese).

    SnowNLP loads its word segmenter on import (about 5 s, more on a busy machine), so that happens
    at the first :meth:`score_many`, not at construction: an English-only shop never pays for it.
    """

    def __init__(self) -> None:
        self._classify: Callable[[str], float] | None = None

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        if self._classify is None:
            try:
                from snownlp import sentiment
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise ImportError("snownlp is missing: `pip install snownlp`") from exc
            self._classify = sentiment.classify
        classify = self._classify
        out = [2.0 * classify(t) - 1.0 if t.strip() else 0.0 for t in texts]
        return np.array(out, dtype=np.float32)


def _sigmoid_score(logits: np.ndarray) -> np.ndarray:
    return (2.0 / (1.0 + np.exp(-logits)) - 1.0).astype(np.float32)  # = tanh(logits / 2)


class NgramClassifier:
    """Logistic regression over hashed, l2-normalised character n-gram counts.

    Hashing keeps the saved model to two arrays (weights and bias) with no vocabulary to store.
    """

    def __init__(
        self,
        coef: np.ndarray | None = None,
        intercept: float = 0.0,
        ngram_range: tuple[int, int] = (1, 3),
    ) -> None:
        self.coef = coef
        self.intercept = float(intercept)
        self.ngram_range = ngram_range

    def _features(self, texts: Sequence[str]):  # -> scipy.sparse.csr_matrix
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(
            analyzer="char",
            ngram_range=self.ngram_range,
            n_features=NGRAM_FEATURES,
            alternate_sign=False,
            norm="l2",
        )
        return vec.transform(list(texts))

    def fit(self, texts: Sequence[str], labels: Sequence[int], c: float = 4.0) -> NgramClassifier:
        """Fit on texts with 0/1 labels (1 = positive); ``c`` is the inverse L2 strength."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
        model.fit(self._features(texts), np.asarray(labels))
        self.coef = model.coef_[0].astype(np.float32)
        self.intercept = float(model.intercept_[0])
        return self

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        if self.coef is None:
            raise ModelNotTrained("n-gram sentiment classifier not trained: call fit() or load()")
        if not len(texts):
            return np.zeros(0, dtype=np.float32)
        return _sigmoid_score(self._features(texts) @ self.coef + self.intercept)

    def save(self, path: Path) -> None:
        """Write weights and settings to one ``.npz`` file."""
        if self.coef is None:
            raise ModelNotTrained("nothing to save: the classifier is not trained")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp, coef=self.coef, intercept=self.intercept, ngram_range=np.array(self.ngram_range)
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NgramClassifier:
        with np.load(path) as data:
            lo, hi = (int(x) for x in data["ngram_range"])
            return cls(data["coef"], float(data["intercept"]), (lo, hi))


class EmbeddingClassifier:
    """Logistic regression over sentence embeddings from ``encoder``."""

    def __init__(self, encoder: Encoder, coef: np.ndarray | None = None, intercept: float = 0.0):
        self.encoder = encoder
        self.coef = coef
        self.intercept = float(intercept)

    def fit_embeddings(
        self, embeddings: np.ndarray, labels: Sequence[int], c: float = 1.0
    ) -> EmbeddingClassifier:
        """Fit on precomputed embeddings ``(n, d)`` with binary labels."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(embeddings, np.asarray(labels))
        self.coef = model.coef_[0].astype(np.float32)
        self.intercept = float(model.intercept_[0])
        return self

    def score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        if self.coef is None:
            raise ModelNotTrained(
                "embedding sentiment classifier not trained: call fit_embeddings()"
            )
        return _sigmoid_score(embeddings @ self.coef + self.intercept)

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        return self.score_embeddings(self.encoder.encode(list(texts), batch_size=64))


# Scorers that need no training, by name (the trained ones are built by their own functions).
SCORERS: dict[str, type[VaderScorer] | type[SnowNLPScorer]] = {
    "vader": VaderScorer,
    "snownlp": SnowNLPScorer,
}


def make_scorer(name: str) -> SentimentScorer:
    """Build an untrained scorer by name; unknown names are rejected with the known ones."""
    if name not in SCORERS:
        raise ValueError(f"unknown sentiment scorer {name!r}; known: {', '.join(SCORERS)}")
    return SCORERS[name]()


def read_online_shopping(path: Path, drop_categories: Sequence[str] = ("酒店",)):
    """Texts and 0/1 labels of ``online_shopping_10_cats.csv.gz``; hotel reviews dropped."""
    texts: list[str] = []
    labels: list[int] = []
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            text = (row["review"] or "").replace("\ufeff", "").strip()
            if row["cat"] in drop_categories or not text:
                continue
            texts.append(text)
            labels.append(int(row["label"]))
    return texts, labels


def train_ngram_classifier(datasets_dir: Path, out_path: Path) -> NgramClassifier:
    """Train the Chinese n-gram classifier on ``online_shopping_10_cats_zh`` (no hotels); save it.

    Raises
    ------
    DatasetMissing
        When the dataset file is not under ``datasets_dir``.
    """
    path = datasets_dir / "online_shopping_10_cats_zh" / "online_shopping_10_cats.csv.gz"
    if not path.is_file():
        raise DatasetMissing(
            f"{path} is absent: set SHOPFLOW_DATASETS_DIR to the folder holding "
            "online_shopping_10_cats_zh, or keep the SnowNLP default"
        )
    texts, labels = read_online_shopping(path)
    log.info("training the Chinese sentiment classifier on %d reviews", len(texts))
    model = NgramClassifier().fit(texts, labels)
    model.save(out_path)
    return model


class ReviewSentiment:
    """Scores reviews with one scorer per language (``"en"``, ``"zh"``)."""

    def __init__(self, scorers: Mapping[str, SentimentScorer], cjk_threshold: float = 0.2):
        self.scorers = dict(scorers)
        self.cjk_threshold = cjk_threshold

    @classmethod
    def default(cls, model_dir: Path | None = None) -> ReviewSentiment:
        """VADER for English; for Chinese the classifier saved in ``model_dir``, else SnowNLP."""
        zh: SentimentScorer
        zh_path = model_dir / ZH_MODEL_FILE if model_dir is not None else None
        if zh_path is not None and zh_path.is_file():
            zh = NgramClassifier.load(zh_path)
        else:
            zh = SnowNLPScorer()
        return cls({"en": VaderScorer(), "zh": zh})

    @classmethod
    def from_settings(cls, settings: Settings, train_if_missing: bool = False) -> ReviewSentiment:
        """:meth:`default` with ``settings.data_dir / "models"``.

        With ``train_if_missing`` the Chinese classifier is trained there first (a minute or two on
        two cores) when its file is absent and ``settings.datasets_dir`` holds the training data;
        otherwise, and on a machine without the datasets, Chinese reviews go to SnowNLP.
        """
        model_dir = settings.data_dir / "models"
        if train_if_missing and not (model_dir / ZH_MODEL_FILE).is_file():
            try:
                train_ngram_classifier(settings.datasets_dir, model_dir / ZH_MODEL_FILE)
            except DatasetMissing as exc:
                log.info("Chinese sentiment stays on SnowNLP: %s", exc)
        return cls.default(model_dir)

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [-1, 1], one per text; empty texts score 0."""
        out = np.zeros(len(texts), dtype=np.float32)
        by_lang: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if text and text.strip():
                by_lang.setdefault(detect_language(text, self.cjk_threshold), []).append(i)
        for lang, idx in by_lang.items():
            scorer = self.scorers.get(lang) or self.scorers["en"]
            out[idx] = scorer.score_many([texts[i] for i in idx])
        return out

    def score(self, text: str, stars: float | None = None, star_weight: float = 0.5) -> float:
        """One review's score: its text's, blended with ``star_score(stars)`` when rated."""
        text_score = float(self.score_many([text])[0]) if text and text.strip() else None
        if stars is None:
            return text_score or 0.0
        if text_score is None:
            return star_score(stars)
        return (1.0 - star_weight) * text_score + star_weight * star_score(stars)


@dataclass(frozen=True)
class SentimentStats:
    """Reviews of one item: how many, their plain mean and the mean shrunk towards the prior."""

    count: int
    mean: float
    shrunk_mean: float


class ItemSentiment:
    """Per-item review sentiment, updated one review at a time.

    The shrunk mean is a Bayesian average, ``(sum + strength * prior) / (count + strength)``: an
    item with three reviews stays near the prior, one with three hundred shows its own mean.
    """

    def __init__(self, prior_mean: float = 0.0, prior_strength: float = 5.0):
        if prior_strength < 0:
            raise ValueError("prior_strength must be >= 0")
        self.prior_mean = prior_mean
        self.prior_strength = prior_strength
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def add(self, item_id: str, score: float) -> SentimentStats:
        """Record one review score (clipped to [-1, 1]) and return the item's new stats."""
        if not math.isfinite(score):
            raise ValueError(f"sentiment score must be finite, got {score}")
        self._sum[item_id] = self._sum.get(item_id, 0.0) + max(-1.0, min(1.0, score))
        self._count[item_id] = self._count.get(item_id, 0) + 1
        return self.get(item_id)

    def get(self, item_id: str) -> SentimentStats:
        """Stats of an item; one without reviews has count 0 and the prior as its shrunk mean."""
        n = self._count.get(item_id, 0)
        total = self._sum.get(item_id, 0.0)
        denom = n + self.prior_strength
        shrunk = (total + self.prior_strength * self.prior_mean) / denom if denom else 0.0
        return SentimentStats(n, total / n if n else 0.0, shrunk)

    def __len__(self) -> int:
        return len(self._count)

    def reason(
        self, item_id: str, min_count: int = 5, praise: float = 0.5, complain: float = -0.3
    ) -> str | None:
        """A short reason text, or None when the evidence is thin or mixed.

        "buyers praise it" when the shrunk mean is at least ``praise`` over ``min_count`` or more
        reviews; "buyers report problems" when it is at most ``complain``.
        """
        stats = self.get(item_id)
        if stats.count < min_count:
            return None
        if stats.shrunk_mean >= praise:
            return f"buyers praise it ({stats.count} reviews)"
        if stats.shrunk_mean <= complain:
            return f"buyers report problems ({stats.count} reviews)"
        return None
