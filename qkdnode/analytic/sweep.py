"""Evaluate the analytic model of a scenario over a swept parameter (the data behind `qkdnode plan`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import ValidationError

from qkdnode.analytic.atoms import predict_atoms
from qkdnode.analytic.cv import predict_cv
from qkdnode.analytic.timebin import predict_timebin
from sim_backends.physics.params import AtomScenario, CVScenario, TimebinScenario, parse_scenario

DISTANCE = "fibre.length_km"

COLUMNS = {
    "timebin": ["click_z_hz", "click_xp_hz", "click_xm_hz", "qber_z", "qber_x", "sifted_z_hz", "secret_key_rate_hz",
                "finite_key_rate_hz"],
    "atoms": ["herald_rate_hz", "fidelity", "chsh_s", "qber", "key_fraction", "secret_key_rate_hz"],
    "cv": ["transmission", "excess_noise_snu", "mutual_information", "holevo_bound", "key_per_symbol",
           "secret_key_rate_hz"],
}


class SweepError(ValueError):
    """A swept parameter path or value the scenario does not accept (message names the key path)."""


def with_parameter(sc: TimebinScenario | AtomScenario | CVScenario, path: str, value: float):
    """Copy of the scenario with the dotted ``path`` set to ``value`` (validated).

    List items are addressed by index, or all at once by ``*``:
    ``fibre.classical_channels.*.launch_power_dbm`` sets every classical channel's launch power.
    """
    data = sc.model_dump()
    targets = [data]
    keys = path.split(".")
    for depth, k in enumerate(keys):
        last = depth == len(keys) - 1
        nxt = []
        for node in targets:
            if isinstance(node, list):
                if k == "*":
                    items = list(range(len(node)))
                    if not items:
                        raise SweepError(f"{path}: {keys[depth - 1]!r} is empty")
                elif k.isdigit() and int(k) < len(node):
                    items = [int(k)]
                else:
                    raise SweepError(f"{path}: {k!r} is not an item of {keys[depth - 1]!r}")
            elif isinstance(node, dict) and k in node:
                items = [k]
            else:
                raise SweepError(f"{path}: no such parameter {k!r}")
            for item in items:
                if last:
                    old = node[item]
                    if isinstance(old, (dict, list, str)) or isinstance(old, bool) or old is None:
                        raise SweepError(f"{path}: not a numeric parameter")
                    node[item] = int(round(value)) if isinstance(old, int) else float(value)
                else:
                    nxt.append(node[item])
        targets = nxt
    try:
        return parse_scenario(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SweepError(f"{'.'.join(str(x) for x in err['loc'][1:])}: {err['msg']}") from None


def evaluate(sc: TimebinScenario | AtomScenario | CVScenario) -> dict[str, float]:
    """The plan columns for one scenario point."""
    if isinstance(sc, TimebinScenario):
        p = predict_timebin(sc)
        z, xp, xm = p.click_rate_hz
        return {"click_z_hz": z, "click_xp_hz": xp, "click_xm_hz": xm, "qber_z": p.qber_z, "qber_x": p.qber_x,
                "sifted_z_hz": p.sifted_z_rate_hz, "secret_key_rate_hz": p.secret_key_rate_hz,
                "finite_key_rate_hz": p.finite_key_rate_hz}
    if isinstance(sc, AtomScenario):
        a = predict_atoms(sc)
        return {"herald_rate_hz": a.herald_rate_hz, "fidelity": a.fidelity, "chsh_s": a.chsh_s, "qber": a.qber,
                "key_fraction": a.key_fraction, "secret_key_rate_hz": a.secret_key_rate_hz}
    c = predict_cv(sc)
    return {"transmission": c.transmission, "excess_noise_snu": c.excess_noise_snu,
            "mutual_information": c.mutual_information, "holevo_bound": c.holevo_bound,
            "key_per_symbol": c.key_per_symbol, "secret_key_rate_hz": c.secret_key_rate_hz}


def sweep(sc: TimebinScenario | AtomScenario | CVScenario, path: str, values: Sequence[float]) -> list[dict[str, float]]:
    """Rows {path: value, column: figure, ...} for each value."""
    return [{path: float(v), **evaluate(with_parameter(sc, path, float(v)))} for v in values]


def default_distances(sc: TimebinScenario | AtomScenario | CVScenario, steps: int = 13) -> np.ndarray:
    """0 to 1.5 x the scenario's fibre length."""
    return np.linspace(0.0, 1.5 * sc.fibre.length_km, steps)
