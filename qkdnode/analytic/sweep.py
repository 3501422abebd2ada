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
    """Copy of the scenario with the dotted ``path`` set to ``value`` (validated)."""
    data = sc.model_dump()
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(node, dict) or k not in node or not isinstance(node[k], dict):
            raise SweepError(f"{path}: no such parameter group {k!r}")
        node = node[k]
    if keys[-1] not in node or isinstance(node[keys[-1]], (dict, list)):
        raise SweepError(f"{path}: no such numeric parameter")
    old = node[keys[-1]]
    node[keys[-1]] = int(round(value)) if isinstance(old, int) and not isinstance(old, bool) else float(value)
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
