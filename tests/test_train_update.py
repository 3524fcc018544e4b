"""``shopflow train --warm-start``: the sequential model fine-tuned from an earlier bundle."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shopflow.cli import app
from shopflow.config import load_settings
from shopflow.ingest.demo import DemoConfig, generate, load_into
from shopflow.ingest.schema import Event, Item
from shopflow.models.bundle import load_bundle
from shopflow.store.bundles import BundleStore
from shopflow.store.store import Store

SMALL = ["sasrec.hidden=16", "sasrec.max_len=20", "sasrec.epochs=3", "sasrec.max_val_users=20"]
NEW_ITEM = "zz-new-serum"


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _train(runner: CliRunner, env: dict[str, str], *args: str) -> str:
    cmd = ["train", "--models", "trending,sasrec", "--no-text", "--eval-users", "0", *args]
    for pair in SMALL:
        cmd += ["--set", pair]
    result = runner.invoke(app, cmd, env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_warm_start_adds_the_new_item_and_learns_its_new_events(tmp_path: Path) -> None:
    shop = generate(DemoConfig(seed=5, n_users=40, n_items=100, days=10))
    settings = load_settings(data_dir=tmp_path)
    store = Store.from_settings(settings)
    load_into(store, shop)
    cutoff = shop.events[len(shop.events) // 2].timestamp
    runner, env = CliRunner(), {"SHOPFLOW_DATA_DIR": str(tmp_path)}
    _train(runner, env, "--cutoff", cutoff.isoformat())
    base = BundleStore(tmp_path / "bundles").current()
    assert base is not None and "sasrec" in _manifest(base)["models"]

    # after the cutoff: a new item, always viewed right after one existing item by 30 new users
    before = shop.items[3]
    store.catalogue.upsert(
        [Item(item_id=NEW_ITEM, title="Night serum", brand=before.brand, categories=["Beauty"])]
    )
    t = shop.events[-1].timestamp + timedelta(hours=1)
    store.events.append(
        [
            Event(
                event_id=f"planted-{u}-{j}",
                type="view",
                user_id=f"planted-{u}",
                item_id=item,
                timestamp=t + timedelta(minutes=10 * u + j),
            )
            for u in range(30)
            for j, item in enumerate([before.item_id, NEW_ITEM])
        ]
    )
    store.close()

    output = _train(
        runner, env, "--warm-start", "current", "--warm-epochs", "15", "--set", "sasrec.lr=0.005"
    )
    path = BundleStore(tmp_path / "bundles").current()
    assert path is not None and path != base
    warm = _manifest(path)["warm_start"]
    assert warm["from"] == base.name and warm["new_items"] == 1 and warm["epochs"] == 15
    assert warm["users_with_new_events"] >= 30 and warm["new_events"] >= 60
    assert f"sasrec warm-started from bundle {base.name}" in output

    bundle = load_bundle(path)
    model = bundle.models["sasrec"]
    assert model.n_items == len(bundle.items)
    new, prev = bundle.items.index_of(NEW_ITEM), bundle.items.index_of(before.item_id)
    scores = model.score([np.array([prev])])
    assert np.all(np.isfinite(scores))
    ids, _ = model.recommend([np.array([prev])], k=3)
    assert new in ids[0].tolist()
    # the base bundle's model, on the base item map, knew nothing of the new item
    assert NEW_ITEM not in load_bundle(base).items


def test_warm_start_arguments_are_checked(tmp_path: Path) -> None:
    runner, env = CliRunner(), {"SHOPFLOW_DATA_DIR": str(tmp_path)}
    for args, message in (
        (["--warm-start", "no-such-dir"], "no-such-dir is not a model bundle"),
        (["--warm-start", "current"], "no current bundle"),
        (["--warm-start", "current", "--models", "trending"], "include it in --models"),
    ):
        bad = runner.invoke(app, ["train", "--no-text", *args], env=env)
        flat = " ".join(re.sub("[│╭╮╰╯─]", " ", bad.output).split())  # rich box, wrapped lines
        assert bad.exit_code == 2 and message in flat, (args, bad.output)
