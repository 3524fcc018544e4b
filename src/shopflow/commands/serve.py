"""``shopflow serve``: run the HTTP API under uvicorn.

The settings are resolved once here (environment, TOML file, command-line overrides) and handed
to every worker through the environment; each worker calls the app factory, which opens the store
and the online state. Logs are JSON lines on stderr.

Startup refuses to serve without an API key (set ``SHOPFLOW_AUTH__API_KEY`` or ``auth.keys``) unless
``--insecure-no-auth`` is given or the settings are the demo's (``auth.demo``). ``shopflow keys``
mints a key and prints how to configure it. With several workers, Prometheus metrics are shared
through ``PROMETHEUS_MULTIPROC_DIR`` (default ``<data_dir>/metrics``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shopflow.config import Settings, load_settings
from shopflow.errors import ConfigError, ShopflowError

HELP = (
    "Run the HTTP API (OpenAPI docs at /docs, health at /healthz and /readyz).\n\n"
    "Example: shopflow serve --port 8000, then\n"
    "curl -X POST localhost:8000/v1/events -H 'Content-Type: application/json' "
    '-d \'[{"event_id": "e1", "type": "view", "user_id": "u1", "item_id": "i1", '
    '"timestamp": "2024-05-01T12:00:00Z"}]\''
)
APP_FACTORY = "shopflow.serving.app:create_app"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def check_serving_settings(settings: Settings, workers: int) -> None:
    """Refuse combinations that would serve wrong answers, saying what to set instead.

    Raises
    ------
    ConfigError
        When ``workers`` is below 1, or above 1 without a shared (Redis) online state.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"--workers {workers} needs an online state shared by the workers: set "
            "SHOPFLOW_REDIS_URL=redis://host:6379/0 (or pass --redis-url), or use --workers 1"
        )


def check_auth_settings(settings: Settings, insecure_no_auth: bool = False) -> None:
    """Refuse to serve without API keys unless asked to on purpose (or in the demo).

    Raises
    ------
    ConfigError
        When ``auth.enabled`` is false or no key is configured, and neither ``insecure_no_auth``
        nor ``auth.demo`` is set; the message says what to set.
    """
    if settings.auth.demo or insecure_no_auth:
        return
    if not settings.auth.enabled:
        raise ConfigError(
            "auth.enabled is false (SHOPFLOW_AUTH__ENABLED), so anyone who reaches the port could "
            "read and change everything; enable it and configure a key, or pass "
            "--insecure-no-auth to serve without keys on purpose (local use only)"
        )
    if not settings.auth.keys:
        raise ConfigError(
            "no API key is configured, so anyone who reaches the port could read and change "
            "everything: set SHOPFLOW_AUTH__API_KEY=<key> (a key with every scope; mint one with "
            "`shopflow keys --name admin --scope admin`), or list hashed keys under [auth] keys "
            "in the TOML file (SHOPFLOW_CONFIG); to serve without keys on purpose (local use "
            "only) pass --insecure-no-auth"
        )


def _share_metrics(settings: Settings, workers: int) -> None:
    """With several workers, point prometheus-client's multiprocess mode at an empty folder."""
    from shopflow.serving.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        path = prepare_multiprocess_dir(settings.data_dir / "metrics")
        os.environ[MULTIPROC_ENV] = str(path.resolve())


def _preflight(settings: Settings) -> None:
    """Open the store and the online state once, so that a wrong URL fails here with its reason."""
    from shopflow.store.online import make_online_state
    from shopflow.store.store import Store

    Store.from_settings(settings).close()
    make_online_state(settings)


def run_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    insecure_no_auth: bool = False,
) -> None:
    """Serve the API with ``settings`` until interrupted (blocks).

    Parameters
    ----------
    settings
        Resolved settings; every worker's app factory receives exactly these.
    host, port
        Where to listen.
    workers
        Uvicorn worker processes; more than one needs ``settings.redis_url``.
    log_level
        One of critical, error, warning, info, debug.
    insecure_no_auth
        Serve even when no API key is configured (every route open); see
        :func:`check_auth_settings`.
    """
    import uvicorn

    from shopflow.serving.app import SETTINGS_ENV
    from shopflow.serving.logs import configure_json_logging

    check_serving_settings(settings, workers)
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level {log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    configure_json_logging(log_level)
    _preflight(settings)
    check_auth_settings(settings, insecure_no_auth)
    _share_metrics(settings, workers)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep our JSON handlers
        log_level=log_level,
        access_log=False,  # uvicorn's access log prints paths with user ids; ours logs templates
        proxy_headers=False,
        http="auto",  # httptools (a dependency), h11 without it
        loop="asyncio",  # not uvloop even when installed: it let saturated connections starve
    )


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes; more than 1 needs --redis-url.")
    ] = 1,
    data_dir: Annotated[
        Path | None, typer.Option(help="Overrides SHOPFLOW_DATA_DIR (where the SQLite file lives).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Overrides SHOPFLOW_DATABASE_URL (sqlite:/// or postgresql://)."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Overrides SHOPFLOW_REDIS_URL (shared online state).")
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="critical, error, warning, info or debug.")
    ] = "info",
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without API keys when none is configured: every route open to anyone "
            "who reaches the port. Local use only.",
        ),
    ] = False,
) -> None:
    given = {"data_dir": data_dir, "database_url": database_url, "redis_url": redis_url}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = load_settings(**overrides)
        if insecure_no_auth and not settings.auth.active():
            typer.echo(
                "WARNING: --insecure-no-auth: API keys are off, every route is open to anyone "
                "who can reach the port",
                err=True,
            )
        run_server(settings, host, port, workers, log_level, insecure_no_auth)
    except ShopflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


KEYS_HELP = (
    "Mint an API key and print it once, with the settings that make the service accept it.\n\n"
    "Example: shopflow keys --name shop-backend --scope ingest --scope read"
)


def keys_command(
    name: Annotated[str, typer.Option(help="Who will hold the key, e.g. shop-backend.")] = "admin",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="ingest, read or admin (repeat for several; admin implies all)."),
    ] = None,
) -> None:
    import json

    from shopflow.config import ApiKeySpec, hash_api_key
    from shopflow.serving.auth import SCOPES, new_api_key

    scopes = list(dict.fromkeys(scope or ["admin"]))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(
            f"unknown scope {unknown[0]!r}; use {', '.join(SCOPES)}", param_hint="--scope"
        )
    key = new_api_key()
    spec = ApiKeySpec(name=name, sha256=hash_api_key(key), scopes=scopes)  # type: ignore[arg-type]
    entry = json.dumps(spec.model_dump())
    toml = f"name = {json.dumps(name)}, sha256 = {json.dumps(spec.sha256)}, scopes = "
    toml += json.dumps(spec.scopes)
    typer.echo(
        f"API key for {name!r} (scopes: {', '.join(spec.scopes)}); shown once, keep it secret:"
    )
    typer.echo(f"  {key}")
    typer.echo("Configure the service with one of (only the hash is stored):")
    typer.echo(f"  SHOPFLOW_AUTH__KEYS='[{entry}]'")
    typer.echo(f"  or, under [auth] in the TOML file: keys = [{{ {toml} }}]")
    if spec.scopes == ["admin"]:
        typer.echo(f"  or simply SHOPFLOW_AUTH__API_KEY={key}")
    typer.echo(f"Clients send: Authorization: Bearer {key}")
