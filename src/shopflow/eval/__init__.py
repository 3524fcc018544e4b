"""Offline evaluation (DESIGN.md §6).

- :mod:`shopflow.eval.split` — protocols: leave-one-out (full ranking), time split, and the
  explicitly named sampled-negative option.
- :mod:`shopflow.eval.metrics` — ranking metrics over top-K lists, tie rules, ``evaluate_topk``.
- :mod:`shopflow.eval.beyond` — coverage, exposure Gini, diversity, novelty, popularity, brand
  exposure.
- :mod:`shopflow.eval.segments` — per-segment labels and averages (history length, item popularity,
  cold users).
- :mod:`shopflow.eval.cold` — the cold-item protocol (items held out of training, ranked as
  targets); :mod:`shopflow.eval.cold_sasrec` trains the sequential model for it.
"""
