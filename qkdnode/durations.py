"""Durations as people write them on a command line: `90`, `3600s`, `90m`, `6h`, `26d`, `1.5h`."""

from __future__ import annotations

import argparse
import math
import re

UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(s|min|m|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number with an optional unit s, m (or min), h, d; a plain number is seconds."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give a number with an optional unit s, m, h or d (e.g. 6h, 90m)")
    seconds = float(match.group(1)) * UNIT_S[match.group(2) or ""]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a finite duration")
    return seconds


def duration_arg(text: str) -> float:
    """argparse `type=` for a duration (seconds); a bad value is a one-line usage error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
