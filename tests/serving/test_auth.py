"""API keys with scopes, through the real app: 401/403 with what is needed, every route guarded."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shopflow.commands.serve import check_auth_settings, keys_command, serve_command
from shopflow.config import ApiKeySpec, Settings, hash_api_key, load_settings
from shopflow.errors import ConfigError
from shopflow.serving.auth import KeyRing, by_method
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory, ev

KEYS = {"ingester": "k-ingest-1", "reader": "k-read-1", "root": "k-admin-1"}
SCOPES = {"ingester": ["ingest"], "reader": ["read"], "root": ["admin"]}
PUBLIC = {"/healthz", "/readyz", "/metrics"}


def _auth_settings(tmp_path: Path, **auth: object) -> Settings:
    keys = [
        {"name": name, "sha256": hash_api_key(key), "scopes": SCOPES[name]}
        for name, key in KEYS.items()
    ]
    return load_settings(data_dir=tmp_path / "data", auth={"keys": keys, **auth})


def _bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def test_keyring_matches_only_its_keys_and_admin_implies_every_scope() -> None:
    ring = KeyRing(
        [
            ApiKeySpec(name="a", sha256=hash_api_key("ka"), scopes=["read"]),
            ApiKeySpec(name="b", sha256=hash_api_key("kb"), scopes=["admin"]),
        ]
    )
    a, b = ring.authenticate("ka"), ring.authenticate("kb")
    assert a is not None and b is not None
    assert [a.allows(s) for s in ("read", "ingest", "admin")] == [True, False, False]
    assert [b.allows(s) for s in ("read", "ingest", "admin")] == [True, True, True]
    assert (a.name, b.name) == ("a", "b")
    assert ring.authenticate("kc") is None and ring.authenticate("") is None
    assert ring.authenticate(hash_api_key("ka")) is None  # the stored hash is not a key


def test_without_a_key_401_says_which_scope_and_how(
    tmp_path: Path, sqlite_store: Store, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path))
    r = client.post("/v1/events", json=[ev(1)])
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "detail": "this endpoint needs an API key with the 'ingest' scope; send it as "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>`",
        "status": 401,
    }
    r = client.get("/v1/items/i1", headers={"X-API-Key": "not-a-key"})
    assert r.status_code == 401
    assert r.json()["detail"].startswith("the API key is not valid (unknown or revoked)")
    assert "'read' scope" in r.json()["detail"]
    assert sqlite_store.events.count() == 0


def test_a_key_without_the_scope_gets_403_and_nothing_is_written(
    tmp_path: Path, sqlite_store: Store, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path))
    r = client.post("/v1/events", json=[ev(1)], headers=_bearer("reader"))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "the API key 'reader' has the scopes [read]; this endpoint needs 'ingest' (or 'admin'): "
        "use a key with that scope"
    )
    assert sqlite_store.events.count() == 0
    r = client.post("/v1/events", json=[ev(1)], headers={"X-API-Key": KEYS["ingester"]})
    assert (r.status_code, r.json()["accepted_ids"]) == (200, ["e1"])
    assert sqlite_store.events.count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("GET", "/v1/items/i1", None, {"reader", "root"}),
        ("GET", "/v1/items", None, {"reader", "root"}),
        ("PUT", "/v1/items/i9", {"title": "Mug", "price": 3.5}, {"ingester", "root"}),
        ("POST", "/v1/items", [{"item_id": "i8", "title": "Cup"}], {"ingester", "root"}),
        ("DELETE", "/v1/items/i1", None, {"ingester", "root"}),
        ("GET", "/v1/users/u1/events", None, {"reader", "root"}),
        ("GET", "/v1/users/u1", None, {"reader", "root"}),
        ("PUT", "/v1/users/u7", {"attributes": {}}, {"ingester", "root"}),
        ("GET", "/v1/users/u1/export", None, {"root"}),
        ("DELETE", "/v1/users/u1", None, {"root"}),
    ],
)
def test_scope_of_each_route(
    tmp_path: Path,
    sqlite_store: Store,
    make_client: ClientFactory,
    method: str,
    path: str,
    body: object,
    allowed: set[str],
) -> None:
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path))
    for name in KEYS:
        # a fresh catalogue entry and event each time, so that reads and deletes find something
        client.put("/v1/items/i1", json={"title": "Pen"}, headers=_bearer("root"))
        client.post("/v1/events", json=[ev(1)], headers=_bearer("root"))
        client.put("/v1/users/u1", json={}, headers=_bearer("root"))
        r = client.request(method, path, json=body, headers=_bearer(name))
        if name in allowed:
            assert r.status_code in (200, 201), (name, r.status_code, r.text)
        else:
            assert r.status_code == 403, (name, r.status_code, r.text)
            assert "or 'admin'" in r.json()["detail"]


def test_every_route_but_health_metrics_and_docs_needs_a_key(
    tmp_path: Path, sqlite_store: Store, make_client: ClientFactory
) -> None:
    """Guards routers added later too: a new router without a scope fails here."""
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path))
    guarded = 0
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if template in PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "x1", template)
        for method in operations:
            r = client.request(method.upper(), path)
            assert r.status_code == 401, (method, template, r.status_code)
            guarded += 1
    assert guarded >= 12
    for public in ("/healthz", "/readyz", "/metrics"):
        assert client.get(public).status_code == 200, public


def test_plain_api_key_setting_is_an_admin_key_and_is_not_kept(
    tmp_path: Path, sqlite_store: Store, make_client: ClientFactory
) -> None:
    settings = load_settings(data_dir=tmp_path, auth={"api_key": "sf_plain_secret"})
    assert "sf_plain_secret" not in settings.model_dump_json()
    client = make_client(sqlite_store, settings_=settings)
    assert client.post("/v1/events", json=[ev(1)]).status_code == 401
    hdr = {"Authorization": "Bearer sf_plain_secret"}
    assert client.post("/v1/events", json=[ev(1)], headers=hdr).status_code == 200
    assert client.get("/v1/users/u1/export", headers=hdr).status_code == 200


def test_keys_never_reach_the_logs(
    tmp_path: Path,
    sqlite_store: Store,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path))
    client.post("/v1/events", json=[ev(1)], headers=_bearer("ingester"))
    client.post("/v1/events", json=[ev(2)], headers=_bearer("reader"))
    client.get("/v1/items/i1", headers={"X-API-Key": "wrong-key-zz"})
    assert any(getattr(r, "status", None) == 403 for r in caplog.records)  # the access log ran
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    for secret in [*KEYS.values(), "wrong-key-zz"]:
        assert secret not in text


def test_auth_off_in_the_demo_with_a_warning(
    tmp_path: Path,
    sqlite_store: Store,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    client = make_client(sqlite_store, settings_=_auth_settings(tmp_path, demo=True))
    assert client.post("/v1/events", json=[ev(1)]).status_code == 200
    assert client.get("/v1/users/u1/export").status_code == 200
    warned = [r for r in caplog.records if "API keys are OFF" in r.getMessage()]
    assert warned and warned[0].why == "demo mode (auth.demo)"


def test_by_method_rule() -> None:
    rule = by_method(read="read", write="ingest", admin=["GET /v1/users/{user_id}/export"])
    assert rule("GET", "/v1/users/{user_id}") == "read"
    assert rule("HEAD", "/v1/items") == "read"
    assert rule("POST", "/v1/items") == "ingest"
    assert rule("GET", "/v1/users/{user_id}/export") == "admin"


def test_startup_refuses_to_serve_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SHOPFLOW_AUTH__API_KEY=<key>") as info:
        check_auth_settings(load_settings(data_dir=tmp_path))
    assert "--insecure-no-auth" in str(info.value)
    with pytest.raises(ConfigError, match=r"auth.enabled is false \(SHOPFLOW_AUTH__ENABLED\)"):
        check_auth_settings(_auth_settings(tmp_path, enabled=False))
    check_auth_settings(_auth_settings(tmp_path))
    check_auth_settings(load_settings(data_dir=tmp_path), insecure_no_auth=True)
    check_auth_settings(load_settings(data_dir=tmp_path, auth={"demo": True}))


def _cli(*commands: object) -> typer.Typer:
    app = typer.Typer()
    for cmd in commands:
        app.command()(cmd)  # type: ignore[arg-type]
    return app


def test_serve_command_says_which_variable_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("SHOPFLOW_AUTH__API_KEY", "SHOPFLOW_AUTH__KEYS", "SHOPFLOW_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(_cli(serve_command), ["--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "error: no API key is configured" in r.output
    assert "SHOPFLOW_AUTH__API_KEY" in r.output


def test_minted_key_works_with_the_printed_settings(
    tmp_path: Path,
    sqlite_store: Store,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = CliRunner().invoke(
        _cli(keys_command, serve_command), ["keys-command", "--name", "shop", "--scope", "read"]
    )
    assert r.exit_code == 0, r.output
    key = r.output.splitlines()[1].strip()
    env_line = next(line for line in r.output.splitlines() if "SHOPFLOW_AUTH__KEYS=" in line)
    value = env_line.split("=", 1)[1].strip().strip("'")
    assert json.loads(value)[0]["sha256"] == hash_api_key(key)
    assert key not in value
    monkeypatch.setenv("SHOPFLOW_AUTH__KEYS", value)
    client = make_client(sqlite_store, settings_=load_settings(data_dir=tmp_path))
    assert client.get("/v1/users/u1", headers={"X-API-Key": key}).status_code == 404
    r2 = client.put("/v1/users/u1", json={}, headers={"X-API-Key": key})
    assert r2.status_code == 403 and "'shop' has the scopes [read]" in r2.json()["detail"]
