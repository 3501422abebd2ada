"""Shared helpers for the physics tests: build scenarios with overrides, sort tags into windows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim_backends.physics.params import TimebinScenario, load_scenario, parse_scenario


def timebin_scenario(**overrides: dict) -> TimebinScenario:
    """The qd-timebin-120km scenario with nested overrides, e.g. fibre={"length_km": 20}."""
    data = load_scenario("qd-timebin-120km").model_dump()
    for group, values in overrides.items():
        if isinstance(values, dict):
            data[group].update(values)
        else:
            data[group] = values
    return parse_scenario(data)


@dataclass
class Events:
    """Detections sorted into windows: slot index, Bob basis (0 Z, 1 X), Bob value, tag time."""

    slot: np.ndarray
    basis: np.ndarray
    value: np.ndarray
    time_ps: np.ndarray


def classify(sc: TimebinScenario, ts: np.ndarray, ch: np.ndarray) -> Events:
    """Z detector: early/late window -> value 0/1; X detectors: middle window, X- -> value 1."""
    r = sc.receiver
    rel0 = ts - r.window_offset_ps
    slot = rel0 // sc.period_ps
    rel = rel0 - slot * sc.period_ps
    sep = sc.timebin_separation_ps
    early = rel < r.window_ps
    late = (rel >= sep) & (rel < sep + r.window_ps)
    z = (ch == 1) & (early | late)
    x = ((ch == 2) | (ch == 3)) & late
    keep = z | x
    basis = np.where(z, 0, 1)[keep].astype(np.uint8)
    value = np.where(z, late, ch == 3)[keep].astype(np.uint8)
    return Events(slot[keep], basis, value, ts[keep])


def qbers(world, events: Events) -> tuple[float, int, float, int]:
    """(QBER_Z, n_Z, QBER_X, n_X) of events whose basis matches Alice's."""
    a_basis, a_value = world.alice.choices(events.slot)
    zz = (events.basis == 0) & (a_basis == 0)
    xx = (events.basis == 1) & (a_basis == 1)
    ez = float(np.mean(events.value[zz] != a_value[zz])) if zz.any() else math.nan
    ex = float(np.mean(events.value[xx] != a_value[xx])) if xx.any() else math.nan
    return ez, int(zz.sum()), ex, int(xx.sum())


def within(measured: float, expected: float, n: int, sigmas: float = 4.0, floor: float = 0.0) -> bool:
    """|measured - expected| within `sigmas` binomial standard errors of a proportion over n trials."""
    sd = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    return abs(measured - expected) <= sigmas * sd + floor
