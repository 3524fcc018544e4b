"""``shopflow serve``: run the HTTP API under uvicorn.

The settings are resolved once here (environment, TOML file, command-line overrides) and handed
to every worker through the environment; each worker calls the app factory, which opens the store
and the online state. Logs are JSON lines on stderr.
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
    """
    import uvicorn

    from shopflow.serving.app import SETTINGS_ENV
    from shopflow.serving.logs import configure_json_logging

    check_serving_settings(settings, workers)
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level {log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    configure_json_logging(log_level)
    _preflight(settings)
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
) -> None:
    given = {"data_dir": data_dir, "database_url": database_url, "redis_url": redis_url}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        run_server(load_settings(**overrides), host, port, workers, log_level=log_level)
    except ShopflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
