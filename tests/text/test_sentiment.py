"""Review sentiment: real lexicon scorers, a trained n-gram classifier, per-item aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopflow.config import load_settings
from shopflow.errors import DatasetMissing, ModelNotTrained
from shopflow.text.sentiment import (
    ZH_MODEL_FILE,
    ItemSentiment,
    NgramClassifier,
    ReviewSentiment,
    SnowNLPScorer,
    VaderScorer,
    cjk_share,
    detect_language,
    make_scorer,
    star_score,
    train_ngram_classifier,
)

POSITIVE_ZH = [
    "质量很好，非常满意",
    "物流很快，东西很好",
    "很好用，推荐购买",
    "满意，好评",
    "非常好，喜欢",
]
NEGATIVE_ZH = ["质量太差，很失望", "太差了，退货", "物流很慢，差评", "不好用，失望", "很差，不推荐"]


def test_language_detection() -> None:
    assert detect_language("Great shoes, fit well") == "en"
    assert detect_language("质量很好") == "zh"
    assert detect_language("iPhone 很好用") == "zh"  # 3 of 9 letters are CJK
    assert cjk_share("12345 !!") == 0.0
    assert cjk_share("ab质量") == 0.5


def test_star_score() -> None:
    assert [star_score(s) for s in (1, 2, 3, 4, 5)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert star_score(9) == 1.0


def test_vader_orders_english_reviews() -> None:
    s = VaderScorer().score_many(
        ["I love it, works perfectly!", "It is a phone.", "Terrible, broke after a day."]
    )
    assert s.dtype == np.float32 and s.shape == (3,)
    assert s[0] > 0.5 and abs(s[1]) < 0.1 and s[2] < -0.3


@pytest.mark.slow  # SnowNLP loads its segmenter on first use: 5-20 s
def test_snownlp_orders_chinese_reviews() -> None:
    s = SnowNLPScorer().score_many(["质量很好，非常满意，推荐", "质量太差了，非常失望，退货"])
    assert s[0] > 0.5 > -0.5 > s[1]
    assert make_scorer("snownlp").score_many([""])[0] == 0.0
    with pytest.raises(ValueError, match="known: vader, snownlp"):
        make_scorer("bert")


def test_ngram_classifier_learns_and_round_trips(tmp_path: Path) -> None:
    model = NgramClassifier(ngram_range=(1, 2))
    with pytest.raises(ModelNotTrained):
        model.score_many(["好"])
    model.fit(POSITIVE_ZH * 4 + NEGATIVE_ZH * 4, [1] * 20 + [0] * 20)
    s = model.score_many(["东西很好，满意", "太差，失望"])
    assert s[0] > 0 > s[1]
    assert np.all(np.abs(s) <= 1)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = NgramClassifier.load(path)
    assert loaded.ngram_range == (1, 2)
    np.testing.assert_array_equal(loaded.score_many(["东西很好，满意", "太差，失望"]), s)


def test_default_routes_by_language_and_uses_a_trained_model(tmp_path: Path) -> None:
    plain = ReviewSentiment.default(model_dir=tmp_path)  # no model file yet: SnowNLP for zh
    assert isinstance(plain.scorers["zh"], SnowNLPScorer)
    assert isinstance(plain.scorers["en"], VaderScorer)
    # A classifier trained on an inverted labelling proves that zh reviews go through it.
    inverted = NgramClassifier().fit(POSITIVE_ZH * 4 + NEGATIVE_ZH * 4, [0] * 20 + [1] * 20)
    inverted.save(tmp_path / ZH_MODEL_FILE)
    routed = ReviewSentiment.default(model_dir=tmp_path)
    scores = routed.score_many(["质量很好，满意", "Awful, it broke.", ""])
    assert scores[0] < 0  # the inverted model
    assert scores[1] < 0  # VADER
    assert scores[2] == 0.0
    # Stars blend in with weight star_weight.
    text_only = routed.score("Awful, it broke.")
    assert routed.score("Awful, it broke.", stars=5, star_weight=0.5) == pytest.approx(
        0.5 * text_only + 0.5
    )
    assert routed.score("", stars=1) == -1.0


def test_training_without_the_dataset_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing, match="SHOPFLOW_DATASETS_DIR"):
        train_ngram_classifier(tmp_path, tmp_path / "out.npz")
    # A fresh machine without datasets still gets a working scorer.
    settings = load_settings(data_dir=tmp_path / "data", datasets_dir=tmp_path / "none")
    sentiment = ReviewSentiment.from_settings(settings, train_if_missing=True)
    assert isinstance(sentiment.scorers["zh"], SnowNLPScorer)
    assert not (tmp_path / "data" / "models" / ZH_MODEL_FILE).exists()
    # A saved classifier under the data dir is picked up.
    NgramClassifier().fit(POSITIVE_ZH + NEGATIVE_ZH, [1] * 5 + [0] * 5).save(
        tmp_path / "data" / "models" / ZH_MODEL_FILE
    )
    assert isinstance(ReviewSentiment.from_settings(settings).scorers["zh"], NgramClassifier)


def test_item_sentiment_shrinks_towards_the_prior() -> None:
    agg = ItemSentiment(prior_mean=0.2, prior_strength=10.0)
    assert agg.get("new").shrunk_mean == pytest.approx(0.2) and agg.get("new").count == 0
    for _ in range(3):
        stats = agg.add("few", 1.0)
    assert stats.count == 3 and stats.mean == 1.0
    assert stats.shrunk_mean == pytest.approx((3 * 1.0 + 10 * 0.2) / 13)
    for i in range(300):
        agg.add("many", 0.9 if i % 3 else 0.6)  # mean 0.8
    many = agg.get("many")
    assert many.mean == pytest.approx(0.8)
    assert many.shrunk_mean == pytest.approx((300 * 0.8 + 10 * 0.2) / 310)
    assert many.shrunk_mean > agg.get("few").shrunk_mean  # 300 good reviews beat 3 raves
    assert agg.add("x", 7.0).mean == 1.0  # clipped
    assert len(agg) == 3
    with pytest.raises(ValueError):
        agg.add("x", float("nan"))


def test_item_sentiment_reason() -> None:
    agg = ItemSentiment(prior_mean=0.0, prior_strength=5.0)
    for _ in range(4):
        agg.add("good", 1.0)
    assert agg.reason("good", min_count=5) is None  # too few reviews
    agg.add("good", 1.0)  # shrunk mean 5/10 = 0.5
    assert agg.reason("good", min_count=5, praise=0.5) == "buyers praise it (5 reviews)"
    for _ in range(10):
        agg.add("bad", -0.9)
    assert agg.reason("bad") == "buyers report problems (10 reviews)"
    for s in (1.0, -1.0) * 5:
        agg.add("mixed", s)
    assert agg.reason("mixed") is None
