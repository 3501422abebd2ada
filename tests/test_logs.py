"""Logs are JSON lines with a systemd priority off a terminal; bound context is kept."""

from __future__ import annotations

import io
import json

import structlog

from qkdnode.logs import configure_logging


def test_json_lines_carry_level_priority_and_bound_context() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    structlog.get_logger("t").bind(node="bob", device="piezo").warning("voltage_clipped", voltage_v=150.0)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["event"] == "voltage_clipped"
    assert record["level"] == "warning" and record["priority"] == 4
    assert record["node"] == "bob" and record["device"] == "piezo"


def test_debug_is_filtered_at_info_level() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    structlog.get_logger("t").debug("noise")
    assert stream.getvalue() == ""
