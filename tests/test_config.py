"""Settings: defaults in code, a TOML file over them, environment variables over both."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopflow.config import Settings, load_settings
from shopflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_and_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("SHOPFLOW_CONFIG", "SHOPFLOW_DATA_DIR", "SHOPFLOW_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.data_dir == Path("data")
    assert s.resolved_database_url() == "sqlite:///data/shopflow.db"
    assert s.event_weights["purchase"] > s.event_weights["view"]


def test_example_config_lists_every_key_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFLOW_CONFIG", str(ROOT / "configs" / "shopflow.example.toml"))
    from_file = load_settings()
    monkeypatch.delenv("SHOPFLOW_CONFIG")
    monkeypatch.chdir(ROOT / "tests")  # no shopflow.toml here
    defaults = Settings()
    assert from_file.model_dump() == defaults.model_dump()
    text = (ROOT / "configs" / "shopflow.example.toml").read_text()
    for key in Settings.model_fields:
        assert key in text, f"{key} missing from the example config"


def test_toml_then_environment_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "shopflow.toml"
    cfg.write_text('data_dir = "/srv/sf"\n[online]\nmax_sequence = 50\n')
    monkeypatch.setenv("SHOPFLOW_CONFIG", str(cfg))
    s = load_settings()
    assert s.data_dir == Path("/srv/sf") and s.online.max_sequence == 50
    monkeypatch.setenv("SHOPFLOW_ONLINE__MAX_SEQUENCE", "75")
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", "postgresql+psycopg://db/shop")
    s = load_settings()
    assert s.online.max_sequence == 75
    assert s.resolved_database_url() == "postgresql+psycopg://db/shop"
    assert load_settings(data_dir="/x").data_dir == Path("/x")


def test_bad_config_says_what_is_wrong(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOPFLOW_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()
    cfg = tmp_path / "bad.toml"
    cfg.write_text("colour = 'red'\n")
    monkeypatch.setenv("SHOPFLOW_CONFIG", str(cfg))
    with pytest.raises(Exception, match="colour"):
        load_settings()


def test_unsupported_database_url(tmp_path: Path) -> None:
    from shopflow.store.db import make_engine

    with pytest.raises(ConfigError, match="unsupported database URL scheme 'mysql'"):
        make_engine("mysql://x/y")
    with pytest.raises(ConfigError, match="sqlite_synchronous"):
        make_engine(f"sqlite:///{tmp_path}/a.db", sqlite_synchronous="SOMETIMES")


def test_auth_keys_from_env_are_hashed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import hashlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHOPFLOW_CONFIG", raising=False)
    digest = hashlib.sha256(b"shop-key").hexdigest()
    monkeypatch.setenv("SHOPFLOW_AUTH__API_KEY", "plain-admin-key")
    monkeypatch.setenv(
        "SHOPFLOW_AUTH__KEYS", f'[{{"name": "shop", "sha256": "{digest}", "scopes": ["read"]}}]'
    )
    s = load_settings()
    assert s.auth.api_key is None and "plain-admin-key" not in s.model_dump_json()
    assert [(k.name, k.sha256, k.scopes) for k in s.auth.keys] == [
        ("shop", digest, ["read"]),
        ("api_key", hashlib.sha256(b"plain-admin-key").hexdigest(), ["admin"]),
    ]
    assert s.auth.active() and not load_settings(auth={"demo": True}).auth.active()
    assert load_settings(**s.model_dump()) == s  # what `shopflow serve` hands to its workers


def test_bad_auth_keys_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="sha256"):
        load_settings(auth={"keys": [{"name": "x", "sha256": "not-hex"}]})
    with pytest.raises(Exception, match="scopes"):
        load_settings(auth={"keys": [{"name": "x", "sha256": "a" * 64, "scopes": ["write"]}]})
