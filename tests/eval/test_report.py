"""Report files: JSON, Markdown and HTML with the tables and statements, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from shopflow.eval.report import headline_rows, to_markdown, write_report
from shopflow.eval.runner import RANKING_TEXT, EvalResult, evaluate
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.popular import Popular
from tests.eval.test_runner import NextItem, cyclic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> EvalResult:
    data = cyclic()
    brands = ["acme", "acme", "zeta", None, "zeta", "acme"]
    cats = [["toys"], ["toys"], ["food"], ["food"], [], ["toys"]]
    data = InteractionData(
        data.name,
        data.users,
        data.items,
        data.sequences,
        side=ItemSide(brand=brands, categories=cats),
    )
    return evaluate(data, [NextItem(), Popular()], ks=(1, 2, 3), sampled=2)


def test_write_report_files(result: EvalResult, tmp_path: Path) -> None:
    paths = write_report(result, tmp_path / "out")
    for key in ("metrics_by_k", "segments", "popularity"):
        png = paths[key].read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000, key
    md = paths["markdown"].read_text()
    assert RANKING_TEXT in md and result.texts["protocol"] in md
    assert result.texts["tuning"] in md and result.texts["memory"] in md
    assert "| model | HR@1 | HR@2 | HR@3 | NDCG@1 | NDCG@2 | NDCG@3 | fit s |" in md
    assert "| nextitem | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in md
    assert "| pop | 0.6667 | 0.8333 | 1.0000 |" in md
    assert "![HR and NDCG by K](metrics_by_k.png)" in md
    assert "not a headline" in md and "sampled2_hit_rate@1" in md
    assert "acme" in md  # brand exposure line
    html = paths["html"].read_text()
    assert '<img src="metrics_by_k.png"' in html and "own history excluded" in html
    assert "<td>nextitem</td>" in html
    saved = json.loads(paths["json"].read_text())
    assert saved["models"][1]["metrics"]["hit_rate@1"] == pytest.approx(4 / 6)
    assert saved["protocol"] == "loo" and saved["ks"] == [1, 2, 3]
    assert saved["models"][0]["fit"]["seconds"] >= 0


def test_headline_rows_match_metrics(result: EvalResult) -> None:
    header, rows = headline_rows(result)
    assert header[:4] == ["model", "HR@1", "HR@2", "HR@3"]
    assert header[-5:] == ["fit s", "fit peak MB", "score s", "users/s", "score peak MB"]
    assert [r[0] for r in rows] == ["nextitem", "pop"]
    assert rows[1][header.index("NDCG@3")] == f"{result.models[1].metrics['ndcg@3']:.4f}"


def test_markdown_escapes_pipes() -> None:
    md = to_markdown([("table", ["a", "b"], [["x|y", "1"]])])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x/y | 1 |"]


# -- the CLI ---------------------------------------------------------------------------------------
def _cli(args: list[str], tmp_path: Path, **env: str) -> Result:
    from typer.testing import CliRunner

    from shopflow.cli import app

    base = {"SHOPFLOW_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    return CliRunner().invoke(app, ["evaluate", "--no-progress", *args], env={**base, **env})


def test_cli_benchmark_dataset_with_hand_checked_numbers(tmp_path: Path) -> None:
    root = tmp_path / "datasets" / "amazon_beauty_s3rec"
    root.mkdir(parents=True)
    data = cyclic()  # S3-Rec format: user id, then item ids (1-based here, as in the files)
    lines = [f"{u + 1} " + " ".join(str(i + 1) for i in s) for u, s in enumerate(data.sequences)]
    (root / "Beauty.txt").write_text("\n".join(lines) + "\n")
    out, pred, js = tmp_path / "rep", tmp_path / "pred.jsonl", tmp_path / "r.json"
    res = _cli(
        [
            "--dataset",
            "beauty",
            "--models",
            "pop",
            "--k",
            "1,2,3",
            "--out",
            str(out),
            "--predictions",
            str(pred),
            "--json",
            str(js),
        ],
        tmp_path,
        SHOPFLOW_DATASETS_DIR=str(tmp_path / "datasets"),
    )
    assert res.exit_code == 0, res.output
    assert "own history excluded, full ranking" in res.output
    assert "0.6667" in res.output and "0.8333" in res.output  # pop HR@1, HR@2 (see test_runner)
    assert (out / "report.md").is_file() and (out / "segments.png").stat().st_size > 0
    assert json.loads(js.read_text())["models"][0]["metrics"]["hit_rate@1"] == pytest.approx(4 / 6)
    first = json.loads(pred.read_text().splitlines()[0])
    assert first == {"model": "pop", "user_id": "1", "items": ["4", "5", "6"], "target": "4"}


def _events_csv(tmp_path: Path) -> Path:
    rows = ["user_id,item_id,type,timestamp"]
    t = 1_714_557_600
    for u in range(8):
        for j in range(6):
            rows.append(f"u{u},i{(u + j) % 10},view,{t + 3600 * (u + 10 * j)}")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_imports_a_file_and_uses_the_time_split(tmp_path: Path) -> None:
    csv = _events_csv(tmp_path)
    res = _cli(["--dataset", str(csv), "--format", "csv", "--models", "pop", "--k", "5"], tmp_path)
    assert res.exit_code == 0, res.output
    reports = list((tmp_path / "data" / "reports").glob("events-*/report.md"))
    assert len(reports) == 1  # default folder: SHOPFLOW_DATA_DIR/reports/<dataset>-<time>
    text = reports[0].read_text()
    assert "Time split" in text and "own history excluded" in text
    assert not (tmp_path / "data" / "shopflow.db").exists()  # imported into a temporary store


def test_cli_evaluates_the_configured_store(tmp_path: Path) -> None:
    from shopflow.ingest.importers import run_import
    from shopflow.store.store import Store

    store = Store.from_url(f"sqlite:///{tmp_path / 'shop.db'}")
    run_import("csv", _events_csv(tmp_path), store)
    store.close()
    out = tmp_path / "rep"
    args = [
        "--store",
        "--models",
        "pop",
        "--k",
        "5",
        "--out",
        str(out),
        "--json",
        str(out / "x.json"),
    ]
    res = _cli(args, tmp_path, SHOPFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'shop.db'}")
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "x.json").read_text())
    assert saved["dataset"] == "store" and saved["protocol"] == "time"
    assert saved["n_users"] == 8 and saved["n_items"] == 10 and saved["n_interactions"] == 48


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope", "--models", "pop"], "unknown dataset 'nope'; known:"),
        (["--dataset", "beauty", "--models", "pop,nope"], "unknown model 'nope'; known models:"),
        (["--dataset", "beauty", "--protocol", "random"], "unknown protocol 'random'"),
        (["--models", "pop"], "give --dataset"),
    ],
)
def test_cli_clear_errors(tmp_path: Path, args: list[str], message: str) -> None:
    res = _cli(args, tmp_path)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    if "dataset 'nope'" in message:
        assert "beauty" in res.output and "taobao" in res.output
    if "model 'nope'" in message:
        assert "pop" in res.output and "covisit" in res.output


def test_cli_grid_option(tmp_path: Path) -> None:
    from shopflow.commands.evaluate import parse_grid

    assert parse_grid(
        ["als.factors=64,128", "als.alpha=0.5", "covisit.time_window_seconds=none"]
    ) == {
        "als": {"factors": [64, 128], "alpha": [0.5]},
        "covisit": {"time_window_seconds": [None]},
    }
    res = _cli(["--dataset", "beauty", "--models", "pop", "--grid", "pop.nope=1"], tmp_path)
    assert res.exit_code == 2 and "pop has no setting nope; known: event_weights" in res.output
    res = _cli(["--dataset", "beauty", "--models", "pop", "--grid", "als.factors=8"], tmp_path)
    assert res.exit_code == 2 and "names 'als', which is not among the models" in res.output
