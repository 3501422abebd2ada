"""`qkdnode plan`: tables, JSON/CSV, plots and one-line errors with exit code 2."""

import argparse
import csv
import io
import json

import pytest

from qkdnode.commands import plan


def _run(argv, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    plan.register(sub)
    args = parser.parse_args(["plan", *argv])
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", ["qd-timebin-120km", "di-atoms-100km", "cv-coexistence-120km"])
def test_plan_prints_a_table_over_distance_for_each_scenario(name, capsys):
    code, out, err = _run(["--scenario", name, "--steps", "4"], capsys)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert name in lines[0] and "fibre.length_km" in lines[1] and "secret_key_rate_hz" in lines[1]
    assert len(lines) == 6


def test_plan_json_sweeps_a_parameter(capsys):
    code, out, _ = _run(["--scenario", "qd-timebin-120km", "--param", "receiver.visibility", "--from", "0.8",
                         "--to", "1.0", "--steps", "3", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["param"] == "receiver.visibility"
    qx = [r["qber_x"] for r in data["rows"]]
    assert qx[0] > qx[1] > qx[2]


def test_plan_csv_has_a_header_and_one_row_per_step(capsys):
    code, out, _ = _run(["--scenario", "di-atoms-100km", "--steps", "5", "--csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 5 and float(rows[0]["chsh_s"]) > 2.0


def test_plan_writes_a_png_plot(tmp_path, capsys):
    target = tmp_path / "plan.png"
    code, _, _ = _run(["--scenario", "qd-timebin-120km", "--steps", "4", "--plot", str(target)], capsys)
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--scenario", "no-such-scenario"], "file not found"),
    (["--scenario", "qd-timebin-120km", "--param", "receiver.nope", "--from", "0", "--to", "1"], "receiver.nope"),
    (["--scenario", "qd-timebin-120km", "--param", "receiver.visibility", "--from", "0.5", "--to", "2"], "receiver.visibility"),
    (["--scenario", "qd-timebin-120km", "--param", "receiver.visibility"], "--from and --to"),
    (["--scenario", "qd-timebin-120km", "--param", "fibre.classical_channels.*.launch_power_dbm", "--from", "-30",
      "--to", "0"], "is empty"),
])
def test_plan_bad_input_is_a_one_line_error_with_exit_code_2(argv, fragment, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_plan_reports_the_key_path_of_an_invalid_scenario_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "timebin"\nname = "x"\n[fibre]\nlength_km = 10\nloss_db_per_km = 0.2\nlenght = 3\n')
    code, _, err = _run(["--scenario", str(bad)], capsys)
    assert code == 2 and str(bad) in err and "fibre.lenght" in err


def test_plan_sweeps_the_launch_power_of_every_classical_channel(capsys):
    code, out, _ = _run(["--scenario", "cv-coexistence-120km", "--param", "fibre.classical_channels.*.launch_power_dbm",
                         "--from", "-40", "--to", "-10", "--steps", "4", "--json"], capsys)
    rows = json.loads(out)["rows"]
    noise = [r["excess_noise_snu"] for r in rows]
    key = [r["secret_key_rate_hz"] for r in rows]
    assert code == 0 and noise == sorted(noise) and key[0] > key[-1]
