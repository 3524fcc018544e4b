"""One typed settings tree: defaults in code, overridden by a TOML file, then ``SHOPFLOW_*``
variables.

Precedence (highest first): keyword arguments, environment (``SHOPFLOW_DATA_DIR``,
``SHOPFLOW_DATABASE_URL``, nested keys with ``__`` such as ``SHOPFLOW_ONLINE__MAX_SEQUENCE``), the
TOML file named by ``SHOPFLOW_CONFIG`` (or ``./shopflow.toml`` when present), then the defaults
below. ``configs/shopflow.example.toml`` lists every key.

Example
-------
>>> s = load_settings(data_dir="/tmp/sf")
>>> s.resolved_database_url()
'sqlite:////tmp/sf/shopflow.db'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shopflow.types import EventType

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 1.0,
    EventType.SEARCH: 0.5,
    EventType.FAVORITE: 2.0,
    EventType.ADD_TO_CART: 3.0,
    EventType.REMOVE_FROM_CART: -1.0,
    EventType.PURCHASE: 5.0,
    EventType.RATING: 2.0,
    EventType.REVIEW: 2.0,
    EventType.IMPRESSION: 0.0,
}


class IngestSettings(BaseModel):
    """Validation limits of incoming events."""

    max_future_skew_seconds: float = Field(
        86_400.0, description="Reject events whose timestamp is further than this in the future."
    )
    min_timestamp: str = Field(
        "1990-01-01T00:00:00+00:00", description="Reject events older than this (ISO 8601)."
    )
    max_batch_size: int = Field(10_000, description="Largest batch one call may append.")
    import_batch_size: int = Field(
        5_000, description="Rows per committed transaction in `shopflow import`."
    )


class OnlineSettings(BaseModel):
    """Per-user state kept for real-time answers."""

    max_sequence: int = Field(200, description="Most recent events kept per user.")
    session_timeout_seconds: float = Field(1_800.0, description="Idle time that ends a session.")
    trending_bucket_seconds: int = Field(3_600, description="Width of one trending time bucket.")
    trending_buckets_kept: int = Field(48, description="How many trending buckets are kept.")


Scope = Literal["ingest", "read", "admin"]


def hash_api_key(key: str) -> str:
    """The SHA-256 (hex) under which an API key is stored; the key itself is never kept.

    >>> hash_api_key("sf_example")[:12]
    '911389b4b431'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeySpec(BaseModel):
    """One API key: a name (for logs and messages), the SHA-256 of the key, its scopes."""

    name: str = Field(min_length=1, description="Who holds the key, e.g. 'shop-backend'.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hash_api_key(key), hex.")
    scopes: list[Scope] = Field(
        default_factory=lambda: ["read"],
        description="ingest (write events, items, users), read (recommendations and reads), "
        "admin (everything).",
    )


class AuthSettings(BaseModel):
    """API keys with scopes (``shopflow.serving.auth``); ``shopflow keys`` mints one."""

    enabled: bool = Field(
        True,
        description="Check API keys; `shopflow serve` refuses false without --insecure-no-auth.",
    )
    demo: bool = Field(
        False, description="Demo mode (`shopflow demo run`): keys are off and the service warns."
    )
    api_key: str | None = Field(
        None,
        repr=False,
        description="One key with every scope, in plain text (env SHOPFLOW_AUTH__API_KEY); it is "
        "hashed into `keys` on load and not kept.",
    )
    keys: list[ApiKeySpec] = Field(
        default_factory=list, description="Hashed keys with their scopes (see `shopflow keys`)."
    )

    @model_validator(mode="after")
    def _hash_plain_key(self) -> AuthSettings:
        if self.api_key:
            digest = hash_api_key(self.api_key)
            if all(k.sha256 != digest for k in self.keys):
                self.keys.append(ApiKeySpec(name="api_key", sha256=digest, scopes=["admin"]))
            self.api_key = None
        return self

    def active(self) -> bool:
        """True when requests must carry a key: enabled, not the demo, and some key configured."""
        return self.enabled and not self.demo and bool(self.keys)


class AssistantSettings(BaseModel):
    """The shopping assistant (``POST /v1/assistant``): offline templates, or an optional LLM
    behind an OpenAI-compatible chat-completions endpoint that writes the reply."""

    llm_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1 (the "
        "assistant POSTs to <url>/chat/completions); unset: offline replies only.",
    )
    llm_model: str = Field(default="default", description="Model name sent with every request.")
    llm_api_key_env: str = Field(
        default="SHOPFLOW_ASSISTANT_API_KEY",
        description="Environment variable holding the endpoint's API key (sent as a Bearer "
        "token when set); the key itself never goes in the config.",
    )
    llm_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Per call; past it the answer falls back to the offline path.",
    )
    llm_refine: bool = Field(
        default=True,
        description="Also let the LLM refine the constraints read from the conversation.",
    )
    llm_max_tokens: int = Field(default=400, ge=16, description="Longest LLM answer asked for.")
    max_turns: int = Field(
        default=20, ge=1, description="Latest conversation turns read per request."
    )


class Settings(BaseSettings):
    """All of shopflow's settings. Build with :func:`load_settings`, never at import time."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPFLOW_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(Path("data"), description="Where shopflow writes everything it keeps.")
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the event log and catalogue; default a SQLite file in data_dir."
        ),
    )
    redis_url: str | None = Field(
        None, description="redis:// URL for shared online state; default in-process state."
    )
    redis_prefix: str = Field(
        "shopflow:", description="Prefix of every Redis key (several shops can share one Redis)."
    )
    sqlite_synchronous: str = Field(
        "FULL", description="SQLite `synchronous` pragma: FULL survives power loss, NORMAL a crash."
    )
    datasets_dir: Path = Field(
        Path("../shared/datasets"), description="Folder of the benchmark datasets."
    )
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    assistant: AssistantSettings = Field(default_factory=AssistantSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _config_file()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'shopflow.db').as_posix()}"


def _config_file() -> Path | None:
    named = os.environ.get("SHOPFLOW_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            from shopflow.errors import ConfigError

            raise ConfigError(f"SHOPFLOW_CONFIG names {path}, which is not a file")
        return path
    local = Path("shopflow.toml")
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings now (environment and TOML file), with ``overrides`` on top."""
    return Settings(**overrides)
