"""A real uvicorn server (``run_server`` in a subprocess) over real HTTP, and the serve command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from shopflow.commands.serve import serve_command
from shopflow.config import load_settings
from shopflow.serving.app import SETTINGS_ENV, settings_from_env
from tests.serving.conftest import ev

LAUNCH = """
import sys
from shopflow.commands.serve import run_server
from shopflow.config import load_settings
settings = load_settings(data_dir=sys.argv[1], ingest={"max_batch_size": 3})
run_server(settings, host="127.0.0.1", port=int(sys.argv[2]), insecure_no_auth=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def test_uvicorn_in_a_thread_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The factory as uvicorn loads it (import string, settings from the environment), over TCP."""
    import threading

    import uvicorn

    from shopflow.commands.serve import APP_FACTORY

    given = load_settings(data_dir=tmp_path / "data", ingest={"max_batch_size": 2})
    monkeypatch.setenv(SETTINGS_ENV, given.model_dump_json())
    port = _free_port()
    config = uvicorn.Config(
        APP_FACTORY, factory=True, host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            r = http.post("/v1/events", json=[ev(1), ev(2)])
            assert (r.status_code, r.json()["accepted_ids"]) == (200, ["e1", "e2"])
            assert http.post("/v1/events", json=[ev(1)]).json()["duplicates"] == 1
            assert http.post("/v1/events", json=[ev(3), ev(4), ev(5)]).status_code == 413
            seen = http.get("/v1/users/u1/events").json()
            assert [e["event_id"] for e in seen["events"]] == ["e1", "e2"]
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert (tmp_path / "data" / "shopflow.db").is_file()


@pytest.mark.slow
def test_run_server_subprocess_round_trip(tmp_path: Path) -> None:
    """``run_server`` as ``shopflow serve`` calls it: JSON logs on stderr, clean stop on SIGINT."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(tmp_path / "data"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        _wait_until_up(base, proc)
        with httpx.Client(base_url=base, timeout=10.0) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").json()["ready"] is True
            batch = [ev(1, user="shopper-93"), ev(2, user="shopper-93", type="teleport")]
            r = http.post("/v1/events", json=batch)
            assert r.status_code == 200
            assert (r.json()["accepted"], r.json()["accepted_ids"]) == (1, ["e1"])
            seen = http.get("/v1/users/shopper-93/events").json()
            assert [e["event_id"] for e in seen["events"]] == ["e1"]
            # the settings reached the worker: its batch limit is 3
            too_many = http.post("/v1/events", json=[ev(i) for i in range(10, 14)])
            assert too_many.status_code == 413
            assert "over the limit of 3" in too_many.json()["detail"]
            bad = http.post(
                "/v1/events", content=b"[{", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 400
        assert (tmp_path / "data" / "shopflow.db").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = [orjson.loads(line) for line in err.decode().splitlines() if line.strip()]
    messages = [x["message"] for x in lines]
    assert "service started" in messages and "service stopped" in messages
    assert any(x.get("route") == "/v1/users/{user_id}/events" for x in lines)
    assert "shopper-93" not in err.decode()


def test_settings_travel_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = load_settings(data_dir=tmp_path, redis_url="redis://h:1/0", online={"max_sequence": 7})
    monkeypatch.setenv(SETTINGS_ENV, given.model_dump_json())
    assert settings_from_env() == given


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve_command)
    return app


def test_serve_refuses_workers_without_redis(tmp_path: Path) -> None:
    r = CliRunner().invoke(_cli(), ["--workers", "2", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "--workers 2 needs an online state shared by the workers" in r.output
    assert "SHOPFLOW_REDIS_URL" in r.output


def test_serve_refuses_an_unreachable_database_before_listening(tmp_path: Path) -> None:
    args = ["--database-url", "mysql://x@h/db", "--data-dir", str(tmp_path)]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 1
    assert "unsupported database URL scheme 'mysql'" in r.output
