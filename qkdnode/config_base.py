"""Base pieces of every config model: strict sections and the error that names file, key and reason."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class ConfigError(Exception):
    """A config file could not be read or is invalid; `problems` are (key path, reason) pairs."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {key}: {reason}" if key else f"{self.path}: {reason}" for key, reason in problems))


class Strict(BaseModel):
    """Base of config sections: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
