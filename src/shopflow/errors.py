"""Errors whose message says what went wrong and what to do next."""

from __future__ import annotations


class ShopflowError(Exception):
    """Base class of every error shopflow raises on purpose."""


class ConfigError(ShopflowError):
    """A setting is missing, malformed or unsafe."""


class ValidationFailed(ShopflowError):
    """Input data does not follow the schema; ``problems`` lists ``(location, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in problems))


class NotFound(ShopflowError):
    """A user, item or model that was asked for does not exist."""


class DatasetMissing(ShopflowError):
    """A benchmark dataset is not where shopflow looked for it."""


class ImportFormatError(ShopflowError):
    """A file cannot be read as the format it was given as."""


class BackendUnavailable(ShopflowError):
    """A database or cache named in the settings cannot be reached."""


class ModelNotTrained(ShopflowError):
    """A model was used before it was fitted or loaded."""


def missing_extra(package: str, extra: str) -> ImportError:
    """Build the ImportError raised when an optional dependency is absent."""
    return ImportError(
        f"{package} is not installed; install it with `pip install 'shopflow[{extra}]'`"
    )
