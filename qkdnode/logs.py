"""Structured logging: JSON lines with the systemd priority when not on a terminal, console otherwise."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import structlog

# syslog priorities (sd-daemon(3)): journald reads a "<N>" prefix; with JSON we add the field.
_SYSLOG_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}


def _add_priority(_: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    level = event_dict.get("level", method_name)
    event_dict["priority"] = _SYSLOG_PRIORITY.get(str(level), 6)
    return event_dict


class CurrentStream:
    """Writes to whatever `sys.stdout`/`sys.stderr` is at the moment of writing (test harnesses and
    daemons may replace them after logging was configured)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return getattr(sys, self.name).write(text)

    def flush(self) -> None:
        getattr(sys, self.name).flush()

    def isatty(self) -> bool:
        return bool(getattr(sys, self.name).isatty())


_PART_LOG: contextvars.ContextVar[TextIO | None] = contextvars.ContextVar("qkdnode_part_log", default=None)


class PartStreams:
    """One log file per part of a link that runs in this process (`<dir>/<name>.log`, as each process
    of the process layout writes its own): lines go to the file of the part whose context logs them
    (`part(name)`; asyncio tasks inherit it), others to `<dir>/<default>.log`."""

    def __init__(self, directory: Path, default: str) -> None:
        self.directory = directory
        self._files: dict[str, TextIO] = {}
        self._default = self._open(default)

    def _open(self, name: str) -> TextIO:
        if name not in self._files:
            self._files[name] = open(self.directory / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        return self._files[name]

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Log to `<dir>/<name>.log` inside this block and in the tasks created in it."""
        token = _PART_LOG.set(self._open(name))
        try:
            yield
        finally:
            _PART_LOG.reset(token)

    def write(self, text: str) -> int:
        return (_PART_LOG.get() or self._default).write(text)

    def flush(self) -> None:
        (_PART_LOG.get() or self._default).flush()

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        for file in self._files.values():
            file.close()


@contextlib.contextmanager
def logging_to(stream: TextIO | CurrentStream | PartStreams, level: str = "info", json: bool = True) -> Iterator[None]:
    """Configure logging for a block, then restore the configuration the process had."""
    saved = structlog.get_config()
    configure_logging(level, stream=stream, json=json)
    try:
        yield
    finally:
        structlog.configure(**saved)


def configure_logging(level: str = "info", stream: TextIO | CurrentStream | PartStreams | None = None,
                      json: bool | None = None) -> None:
    """Configure structlog for the process. `json=None` picks JSON unless `stream` is a terminal."""
    stream = stream or CurrentStream("stdout")
    use_json = (not stream.isatty()) if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors += [_add_priority, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
