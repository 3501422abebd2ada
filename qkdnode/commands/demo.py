"""`qkdnode demo`: a complete simulated link, every node and worker in its own process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qkdnode.demo.di_orchestrator import di_progress_line, di_summary_text, run_di_demo
from qkdnode.demo.orchestrator import (
    DemoOptions,
    dumps,
    progress_line,
    run_demo,
    summary_text,
)
from qkdnode.demo.processes import DemoError
from qkdnode.durations import duration_arg
from sim_backends.physics.params import SCENARIO_DIR, AtomScenario, load_scenario

TIMEBIN_DEFAULTS = {"length_km": 60.0, "duration_s": DemoOptions.duration_s, "speed": DemoOptions.speed,
                    "block_bits": DemoOptions.block_bits}
"""The wall-clock speed default (120x) is what two cores keep up with in four processes."""
DI_DEFAULTS = {"length_km": None, "duration_s": 3600.0, "speed": 100.0, "block_bits": 1000}
"""DI: one hour of link time, ~2,500 heralds and ~800 key rounds at 11 km, in about 100 wall s on the
virtual clock (most of it the atom nodes' 20 ms fluorescence counts while an atom loads, one
instrument exchange each); with --clock wall the shipped configs' 100x is what two cores keep up with."""


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = DemoOptions.__dataclass_fields__
    parser = subparsers.add_parser(
        "demo", help="run a complete simulated QKD link (every node and worker a process) and compare the keys at both ends",
        description="Runs Alice's and Bob's node daemons and distillation workers (and for a DI-QKD scenario the "
        "heralding station charlie) on a simulated link, then compares both key stores. By default every part runs "
        "in this process on a virtual clock (as fast as the CPU allows, reproducible from --seed); --clock wall runs "
        "each as a process of its own on an accelerated wall clock.",
    )
    parser.add_argument(
        "--scenario", default=defaults["scenario"].default,
        help="scenario name or TOML file: a time-bin BB84 scenario (default) or an atom scenario "
        "(di-atoms-100km, di-atoms-11km) for the DI-QKD link of charlie, alice and bob",
    )
    parser.add_argument(
        "--length-km", type=float,
        help="fibre length (km). Time-bin default 60: at the scenario's 120 km the standard BB84 phase-error bound "
        "leaves no finite key with the published noise (see `qkdnode plan`); 0 keeps the scenario's length. "
        "DI scenarios keep their own length unless this is given",
    )
    for flag, key, kind, what in (("--duration", "duration_s", duration_arg, "link time to run: seconds, or with a unit "
                                   "(90m, 6h, 26d)"),
                                  ("--speed", "speed", float, "with --clock wall: link seconds per wall second"),
                                  ("--block-bits", "block_bits", int, "sifted key bits per distillation block")):
        parser.add_argument(flag, type=kind, help=f"{what} (default {TIMEBIN_DEFAULTS[key]:g} time-bin, {DI_DEFAULTS[key]:g} DI)")
    parser.add_argument("--clock", choices=("virtual", "wall"), default="virtual",
                        help="virtual (default): every node and worker in this process, link time moving only when all "
                        "of them wait: as fast as the CPU allows, the same result from the same seed on any machine. "
                        "wall: each a process of its own on an accelerated wall clock (--speed), the lab's timing")
    parser.add_argument("--seed", type=int, default=defaults["seed"].default,
                        help="seed of the link's world and of every node's random draws (virtual clock: same seed, same keys)")
    parser.add_argument("--run-dir", type=Path, help="where configs, key stores and logs go (default: a new temp dir)")
    parser.add_argument("--json", action="store_true", help="print only the summary, as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        di = isinstance(load_scenario(args.scenario), AtomScenario)
    except FileNotFoundError:
        known = ", ".join(sorted(path.stem for path in SCENARIO_DIR.glob("*.toml")))
        print(f"error: no scenario {args.scenario!r}: give a name ({known}) or a TOML file", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: scenario {args.scenario}: {exc}", file=sys.stderr)
        return 2
    defaults = DI_DEFAULTS if di else TIMEBIN_DEFAULTS
    length = defaults["length_km"] if args.length_km is None else (None if args.length_km == 0 else args.length_km)
    options = DemoOptions(
        scenario=args.scenario, length_km=length,
        duration_s=defaults["duration_s"] if args.duration is None else args.duration,
        speed=defaults["speed"] if args.speed is None else args.speed,
        block_bits=defaults["block_bits"] if args.block_bits is None else args.block_bits, seed=args.seed,
        clock=args.clock,
    )
    if args.run_dir is not None:
        options.run_dir = args.run_dir
    try:
        if di:
            summary = run_di_demo(options, progress=None if args.json else _printer(di_progress_line))
        else:
            summary = run_demo(options, progress=None if args.json else _printer(progress_line))
    except DemoError as exc:
        print(f"error: demo failed: {exc}", file=sys.stderr)
        return 1
    text = di_summary_text(summary) if di else summary_text(summary)
    print(dumps(summary) if args.json else "\n" + text)
    if di:  # no finite key is expected at demo lengths: success is a working link whose two ends agree
        return 0 if summary["keys_identical"] and summary["heralds"] > 0 else 1
    return 0 if summary["keys_identical"] and summary["secret_bits"] > 0 else 1


def _printer(line: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], None]:
    def show(snapshot: dict[str, Any]) -> None:
        end = "\n" if not sys.stdout.isatty() else "\r"
        print(line(snapshot), end=end, flush=True)
    return show
