"""Reports of an :class:`~shopflow.eval.runner.EvalResult`: JSON, Markdown and HTML with plots.

:func:`write_report` writes into one folder ``result.json``, ``report.md``, ``report.html``
and three PNG plots: ranking metrics by K, NDCG per user segment, and the popularity of
recommended items (share of the top-K slots in each popularity decile of the catalogue, beside
the test targets). The Markdown and HTML are rendered from the same list of blocks, so they
always say the same things, including the protocol and the "own history excluded, full ranking"
statement.

Example
-------
>>> from shopflow.eval.runner import evaluate               # doctest: +SKIP
>>> paths = write_report(evaluate(data, ["pop"]), "reports/beauty")  # doctest: +SKIP
>>> sorted(paths)                                            # doctest: +SKIP
['html', 'json', 'markdown', 'metrics_by_k', 'popularity', 'segments']
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from shopflow.eval.runner import EvalResult, ModelResult, reference_k

Block = tuple[Any, ...]  # ("h1"|"h2"|"p", text) | ("table", header, rows) | ("img", file, alt)
ACCURACY = (("hit_rate", "HR"), ("ndcg", "NDCG"), ("mrr", "MRR"), ("map", "MAP"))
BEYOND = (
    ("coverage", "coverage"),
    ("gini", "exposure Gini"),
    ("novelty", "novelty (bits)"),
    ("popularity", "mean popularity"),
    ("diversity", "diversity"),
)
PLOTS = {
    "metrics_by_k": "metrics_by_k.png",
    "segments": "segments.png",
    "popularity": "popularity.png",
}


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals, NaN / None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def headline_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Model × (HR, NDCG at every K) + fit / score time and peak memory (the CLI table too)."""
    header = ["model"]
    header += [f"HR@{k}" for k in result.ks] + [f"NDCG@{k}" for k in result.ks]
    header += ["fit s", "fit peak MB", "score s", "users/s", "score peak MB"]
    rows = []
    for m in result.models:
        row = [m.name]
        row += [fmt(m.metrics.get(f"hit_rate@{k}")) for k in result.ks]
        row += [fmt(m.metrics.get(f"ndcg@{k}")) for k in result.ks]
        rate = result.n_eval_users / m.score.seconds if m.score.seconds > 0 else float("nan")
        row += [fmt(m.fit.seconds, 2), fmt(m.fit.peak_mb, 0), fmt(m.score.seconds, 2)]
        row += [fmt(rate, 0), fmt(m.score.peak_mb, 0)]
        rows.append(row)
    return header, rows


def _blocks(result: EvalResult) -> list[Block]:
    ks, kr = result.ks, reference_k(result.ks)
    b: list[Block] = [("h1", f"shopflow evaluation: {result.dataset} ({result.protocol})")]
    b.append(
        (
            "p",
            f"{result.n_users:,} users, {result.n_items:,} items, {result.n_interactions:,} "
            f"interactions; {result.n_eval_users:,} users evaluated. Created {result.created}.",
        )
    )
    b += [("p", result.texts["protocol"]), ("p", "**" + result.texts["ranking"] + "**")]
    if result.time_cutoff is not None:
        b.append(("p", f"Time cutoff: unix {result.time_cutoff:.0f}."))
    b.append(("h2", "Accuracy (own history excluded, full ranking)"))
    b.append(("table", *headline_rows(result)))
    b.append(("h2", "Ranking metrics at each K"))
    header = ["model"] + [f"{short}@{k}" for _, short in ACCURACY for k in ks]
    rows = [
        [m.name] + [fmt(m.metrics.get(f"{n}@{k}")) for n, _ in ACCURACY for k in ks]
        for m in result.models
    ]
    b += [("table", header, rows), ("img", PLOTS["metrics_by_k"], "HR and NDCG by K")]
    b.append(("h2", f"Beyond accuracy (top {kr})"))
    present = [(n, s) for n, s in BEYOND if any(f"{n}@{kr}" in m.metrics for m in result.models)]
    rows = [[m.name] + [fmt(m.metrics.get(f"{n}@{kr}")) for n, _ in present] for m in result.models]
    b.append(("table", ["model"] + [s for _, s in present], rows))
    b.append(
        (
            "p",
            "Coverage: share of the catalogue recommended to anyone. Gini of exposure over "
            "every item. Novelty: mean -log2 of an item's training share. Mean popularity: "
            "training interactions of the recommended items. Diversity: share of pairs from "
            "different categories (only when the data has categories).",
        )
    )
    for m in result.models:
        brands = m.metrics.get(f"brand_exposure@{kr}")
        if brands:
            top = ", ".join(f"{k} {v:.1%}" for k, v in list(brands.items())[:5])
            b.append(("p", f"{m.name}: top brands by share of slots: {top}."))
    b.append(("img", PLOTS["popularity"], "popularity of recommended items"))
    b.append(
        (
            "p",
            f"Share of the top-{kr} slots per popularity decile of the catalogue (decile 1 "
            "= the most popular tenth of the items by training interactions), beside the "
            "share of the test targets.",
        )
    )
    b += _segment_blocks(result, kr)
    b.append(("h2", "Hyper-parameters"))
    b.append(("p", result.texts["tuning"]))
    b.append(
        (
            "table",
            ["model", "grid", "trials (validation NDCG@10)", "final settings"],
            [_tuning_row(m) for m in result.models],
        )
    )
    sampled = [m for m in result.models if m.sampled]
    if sampled:
        b.append(
            (
                "h2",
                f"Sampled-negative metrics ({result.sampled_negatives} negatives; not a headline)",
            )
        )
        b.append(
            (
                "p",
                f"The target is ranked among {result.sampled_negatives} items drawn "
                "uniformly from those the user never had; expected rank under ties. These "
                "numbers are much higher than full ranking and not comparable with it.",
            )
        )
        keys = list(sampled[0].sampled or {})
        b.append(
            (
                "table",
                ["model", *keys],
                [[m.name] + [fmt((m.sampled or {}).get(k)) for k in keys] for m in sampled],
            )
        )
    b.append(("h2", "Cost and machine"))
    b.append(
        (
            "p",
            result.texts["memory"] + " Times are wall-clock seconds of the final fit "
            "(tuning excluded) and of scoring every evaluated user (batches, top-K included); "
            "CPU s is the process's CPU time over all its threads in the same phase.",
        )
    )
    b.append(
        (
            "table",
            [
                "model",
                "fit s",
                "fit CPU s",
                "fit peak MB",
                "fit MB above start",
                "score s",
                "score CPU s",
                "score peak MB",
                "score MB above start",
                "tuning s",
            ],
            [
                [
                    m.name,
                    fmt(m.fit.seconds, 2),
                    fmt(m.fit.cpu_seconds, 2),
                    fmt(m.fit.peak_mb, 0),
                    fmt(m.fit.above_start_mb, 0),
                    fmt(m.score.seconds, 2),
                    fmt(m.score.cpu_seconds, 2),
                    fmt(m.score.peak_mb, 0),
                    fmt(m.score.above_start_mb, 0),
                    fmt(sum(t["seconds"] for t in (m.tuning or {}).get("trials", [])), 1),
                ]
                for m in result.models
            ],
        )
    )
    b.append(("p", "Machine: " + ", ".join(f"{k} {v}" for k, v in result.machine.items()) + "."))
    if result.predictions_path:
        b.append(("p", f"Predictions (top 100 per user, own ids): {result.predictions_path}"))
    return b


def _segment_blocks(result: EvalResult, kr: int) -> list[Block]:
    out: list[Block] = []
    names = {
        "history_length": "history length (items known at ranking time)",
        "target_popularity": "training interactions of the target item",
        "cold_user": "cold (no training event) or warm user",
    }
    for seg_name in _segment_names(result):
        labels = _segment_labels(result, seg_name)
        out.append(("h2", f"NDCG@{kr} by {names.get(seg_name, seg_name)}"))
        header = ["model"] + [f"{lab} (n={n})" for lab, n in labels]
        rows = [
            [m.name]
            + [
                fmt(m.metrics["segments"][seg_name].get(lab, {}).get(f"ndcg@{kr}"))
                for lab, _ in labels
            ]
            for m in result.models
        ]
        out.append(("table", header, rows))
    if out:
        out.append(("img", PLOTS["segments"], "NDCG by segment"))
    return out


def _segment_names(result: EvalResult) -> list[str]:
    return list(result.models[0].metrics.get("segments", {})) if result.models else []


def _segment_labels(result: EvalResult, seg_name: str) -> list[tuple[str, int]]:
    block = result.models[0].metrics["segments"][seg_name]
    return [(lab, int(v["n"])) for lab, v in block.items()]


def _tuning_row(m: ModelResult) -> list[str]:
    if not m.tuning:
        return [m.name, "—", "— (defaults)", _short(m.params)]
    trials = "; ".join(f"{_short(t['params'])}: {fmt(t['ndcg@10'])}" for t in m.tuning["trials"])
    return [m.name, _short(m.tuning["grid"]), trials, _short(m.params)]


def _short(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, dict | list)) or "—"


# -- renderers -------------------------------------------------------------------------------------
def to_markdown(blocks: list[Block]) -> str:
    """Render blocks as GitHub Markdown."""
    lines: list[str] = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            lines += ["#" * int(kind[1]) + " " + rest[0], ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "table":
            header, rows = rest
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{rest[1]}]({rest[0]})", ""]
    return "\n".join(lines)


def to_html(blocks: list[Block], title: str) -> str:
    """Render blocks as one self-contained HTML page (images next to it)."""
    esc = html.escape
    body: list[str] = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{esc(rest[0])}</{kind}>")
        elif kind == "p":
            text = esc(rest[0])
            if text.startswith("**") and text.endswith("**"):
                text = f"<strong>{text[2:-2]}</strong>"
            body.append(f"<p>{text}</p>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{esc(h)}</th>" for h in header)
            trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        elif kind == "img":
            body.append(f'<p><img src="{esc(rest[0])}" alt="{esc(rest[1])}"></p>')
    style = (
        "body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# -- plots -----------------------------------------------------------------------------------------
def plot_metrics_by_k(result: EvalResult, path: Path) -> None:
    """HR@K and NDCG@K against K, one line per model."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, short) in zip(axes, ACCURACY[:2], strict=True):
        for m in result.models:
            ax.plot(
                result.ks, [m.metrics.get(f"{name}@{k}") for k in result.ks], "o-", label=m.name
            )
        ax.set(
            xlabel="K",
            ylabel=f"{short}@K",
            title=f"{short}@K, {result.dataset}",
            xticks=list(result.ks),
        )
        ax.grid(alpha=0.3)
    axes[0].legend()
    _save(fig, path)


def plot_segments(result: EvalResult, path: Path) -> None:
    """Grouped bars of NDCG@K per segment label, one panel per kind of segment."""
    import matplotlib.pyplot as plt

    kr, names = reference_k(result.ks), _segment_names(result)
    fig, axes = plt.subplots(
        1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4), squeeze=False
    )
    width = 0.8 / max(len(result.models), 1)
    for ax, seg_name in zip(axes[0], names, strict=False):
        labels = _segment_labels(result, seg_name)
        for i, m in enumerate(result.models):
            vals = [
                m.metrics["segments"][seg_name].get(lab, {}).get(f"ndcg@{kr}", 0.0)
                for lab, _ in labels
            ]
            ax.bar([x + i * width for x in range(len(labels))], vals, width, label=m.name)
        ax.set_xticks([x + width * (len(result.models) - 1) / 2 for x in range(len(labels))])
        ax.set_xticklabels([f"{lab}\nn={n}" for lab, n in labels], fontsize=8)
        ax.set(ylabel=f"NDCG@{kr}", title=seg_name.replace("_", " "))
    axes[0][0].legend()
    _save(fig, path)


def plot_popularity(result: EvalResult, path: Path) -> None:
    """Share of top-K slots per catalogue popularity decile, per model, beside the targets."""
    import matplotlib.pyplot as plt

    series = [(m.name, m.popularity_profile) for m in result.models]
    series.append(("test targets", result.target_popularity_profile))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(series)
    for i, (name, prof) in enumerate(series):
        xs = [d + i * width for d in range(len(prof))]
        ax.bar(xs, prof, width, label=name, hatch="//" if name == "test targets" else None)
    n = len(result.target_popularity_profile)
    ax.set_xticks([d + width * (len(series) - 1) / 2 for d in range(n)])
    ax.set_xticklabels([str(d + 1) for d in range(n)])
    ax.set(
        xlabel="popularity decile of the catalogue (1 = most popular)",
        ylabel=f"share of top-{reference_k(result.ks)} slots",
        title=f"popularity of recommended items, {result.dataset}",
    )
    ax.legend()
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result.json``, ``report.md``, ``report.html`` and the PNG plots into ``out_dir``.

    Returns
    -------
    dict
        ``{"json", "markdown", "html", "metrics_by_k", "segments", "popularity"}`` → path.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "result.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    plotters = {
        "metrics_by_k": plot_metrics_by_k,
        "segments": plot_segments,
        "popularity": plot_popularity,
    }
    for key, plot in plotters.items():
        paths[key] = out / PLOTS[key]
        plot(result, paths[key])
    blocks = _blocks(result)
    paths["markdown"].write_text(to_markdown(blocks))
    paths["html"].write_text(to_html(blocks, f"shopflow evaluation: {result.dataset}"))
    return paths
