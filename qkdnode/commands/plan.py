"""`qkdnode plan`: expected rates, QBERs and secret key rates of a scenario over distance or a parameter."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tomllib

import numpy as np
from pydantic import ValidationError

from qkdnode.analytic.sweep import COLUMNS, DISTANCE, SweepError, default_distances, sweep
from sim_backends.physics.params import load_scenario, scenario_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plan", help="link planner: expected rates, QBER and key rate (analytic model)")
    parser.add_argument("--scenario", required=True, help="scenario name (configs/scenarios/NAME.toml) or a TOML path")
    parser.add_argument("--param", default=DISTANCE,
                        help="dotted scenario parameter to sweep (default fibre.length_km); list items by index "
                             "or all by '*', e.g. fibre.classical_channels.*.launch_power_dbm")
    parser.add_argument("--from", dest="start", type=float, help="first value (default 0 for distance)")
    parser.add_argument("--to", dest="stop", type=float, help="last value (default 1.5 x scenario length for distance)")
    parser.add_argument("--steps", type=int, default=13, help="number of values (default 13)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG plot")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    path = scenario_path(args.scenario)
    try:
        sc = load_scenario(path)
    except FileNotFoundError:
        return _fail(f"{path}: scenario: file not found")
    except tomllib.TOMLDecodeError as exc:
        return _fail(f"{path}: not valid TOML: {exc}")
    except ValidationError as exc:
        err = exc.errors()[0]
        return _fail(f"{path}: {'.'.join(str(x) for x in err['loc'][1:])}: {err['msg']}")
    if args.steps < 1:
        return _fail("--steps: must be >= 1")
    if args.param == DISTANCE and args.start is None and args.stop is None:
        values = default_distances(sc, args.steps)
    else:
        if args.start is None or args.stop is None:
            return _fail("--from and --to are required when sweeping a parameter other than the distance")
        values = np.linspace(args.start, args.stop, args.steps)
    try:
        rows = sweep(sc, args.param, values)
    except SweepError as exc:
        return _fail(f"{path}: {exc}")
    columns = [args.param, *COLUMNS[sc.kind]]
    if args.json:
        print(json.dumps({"scenario": sc.name, "kind": sc.kind, "param": args.param, "rows": rows}, indent=1))
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_table(sc.name, sc.kind, columns, rows)
    if args.plot:
        try:
            _plot(sc.name, sc.kind, args.param, rows, args.plot)
        except OSError as exc:
            return _fail(f"{args.plot}: cannot write plot: {exc.strerror}")
    return 0


def _print_table(name: str, kind: str, columns: list[str], rows: list[dict[str, float]]) -> None:
    finite = ", finite_key_rate_hz for one block of security.block_duration_s" if kind == "timebin" else ""
    print(f"scenario {name} (analytic model; secret_key_rate_hz asymptotic{finite})")
    widths = [max(len(c), 11) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(f"{row[c]:>{w}.4g}" for c, w in zip(columns, widths)))


def _plot(name: str, kind: str, param: str, rows: list[dict[str, float]], filename: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r[param] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    key = np.array([r["secret_key_rate_hz"] for r in rows])
    rate_col, rate_label = {
        "timebin": ("sifted_z_hz", "sifted key, Z basis (bit/s)"),
        "atoms": ("herald_rate_hz", "heralded events (1/s)"),
        "cv": (None, ""),
    }[kind]
    if rate_col:
        top.semilogy(x, [max(r[rate_col], 1e-12) for r in rows], "o-", label=rate_label)
    top.semilogy(x, np.where(key > 0, key, np.nan), "s-", label="secret key rate (bit/s, asymptotic)")
    if kind == "timebin":
        fin = np.array([r["finite_key_rate_hz"] for r in rows])
        top.semilogy(x, np.where(fin > 0, fin, np.nan), "^-", label="finite key, one block (bit/s)")
    top.set_ylabel("rate (1/s)")
    top.grid(True, which="both", alpha=0.3)
    top.legend()
    top.set_title(f"{name}: analytic model")
    if kind == "timebin":
        bottom.plot(x, [100 * r["qber_z"] for r in rows], "o-", label="QBER Z (%)")
        bottom.plot(x, [100 * r["qber_x"] for r in rows], "s-", label="QBER X (%)")
        bottom.set_ylabel("QBER (%)")
    elif kind == "atoms":
        bottom.plot(x, [r["chsh_s"] for r in rows], "o-", label="CHSH S")
        bottom.axhline(2.0, color="grey", lw=0.8)
        bottom.plot(x, [10 * r["qber"] for r in rows], "s-", label="QBER x 10")
        bottom.set_ylabel("S, 10 x QBER")
    else:
        bottom.semilogy(x, [r["excess_noise_snu"] for r in rows], "o-", label="excess noise (SNU, input-referred)")
        kps = np.array([r["key_per_symbol"] for r in rows])
        bottom.semilogy(x, np.where(kps > 0, kps, np.nan), "s-", label="key (bit/symbol)")
    bottom.set_xlabel(param)
    bottom.grid(True, alpha=0.3)
    bottom.legend()
    fig.tight_layout()
    fig.savefig(filename, dpi=110)
    plt.close(fig)
