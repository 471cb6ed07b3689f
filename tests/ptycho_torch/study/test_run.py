"""`ptycho-torch study` as a whole: one process per folder, what it records (no machine's paths), and the
smoke preset with pty-chi's LSQML added, end to end (slow: it trains 16 small networks, both arms, and runs
8 baseline reconstructions)."""
from __future__ import annotations

import csv
import fcntl
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ptycho_torch.bundle import load_bundle, sha256_file
from ptycho_torch.cli import main
from ptycho_torch.errors import StudyError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import make_probe
from ptycho_torch.study.load import PRESET_DIR, load_config, parse_config
from ptycho_torch.study.pipeline import Runner
from ptycho_torch.study.report import train_runs
from ptycho_torch.study.run import locked, plan_units, recorded_command, run_study, write_resolved_config
from ptycho_torch.study.table import COLUMNS, FRC_COLUMNS, NOT_REACHED, read_csv


def test_one_study_per_output_folder(tmp_path: Path) -> None:
    with open(tmp_path / ".study.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StudyError, match="another `ptycho-torch study` is running"), locked(tmp_path):
            pass
    with locked(tmp_path):
        pass


def test_the_command_and_the_resolved_config_name_no_machine_path(tmp_path: Path) -> None:
    probe = tmp_path / "deep" / "folder" / "probe64.npz"
    probe.parent.mkdir(parents=True)
    np.savez(probe, probeGuess=make_probe(32, defocus_rad=2.0))
    command = recorded_command(output_dir=str(tmp_path / "out"), config="docs/cpu.yaml", probe_from=str(probe))
    assert command == "ptycho-torch study --config docs/cpu.yaml --output-dir out --probe-from probe64.npz"
    assert recorded_command(output_dir="runs/a", preset="smoke") == "ptycho-torch study --preset smoke --output-dir runs/a"

    config = load_config(preset="smoke", probe_from=probe)
    text = write_resolved_config(config, tmp_path).read_text()
    assert str(tmp_path) not in text and "/" not in text  # no path at all: a name and a SHA256
    recorded = yaml.safe_load(text)["data"]["probe"]
    assert recorded["source"] == "probe64.npz" and recorded["sha256"] == sha256_file(probe)


@pytest.mark.slow
def test_smoke_study_fills_the_table_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smoke = yaml.safe_load((PRESET_DIR / "smoke.yaml").read_text())
    smoke["baselines"] = [smoke.pop("baseline"),
                          {"method": "ptychi-lsqml", "iterations": 5, "batch_size": 16, "device": "cpu"}]
    config_file = tmp_path / "smoke.yaml"
    config_file.write_text(yaml.safe_dump(smoke))
    out = tmp_path / "study"
    assert main(["study", "--config", str(config_file), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 reused" in printed and "study finished" in printed

    config = load_config(config_file)
    with open(out / "metrics.csv", newline="") as handle:
        raw = list(csv.DictReader(handle))
    per_condition = 2 * len(config.gridsizes) + 2 + 1  # networks (two arms), two baselines, the constant
    assert len(raw) == len(config.doses) * len(config.overlaps) * per_condition
    for line in raw:  # every cell filled, every number finite: no empty baseline cells
        assert tuple(line) == COLUMNS
        for column in COLUMNS:
            assert line[column] != "", (column, line)
            if column in FRC_COLUMNS and line[column] == NOT_REACHED:
                continue  # an FRC that never drops below 1/7 is written as such, never as a number
            if column not in ("overlap", "method"):
                assert math.isfinite(float(line[column])), (column, line)
    rows = read_csv(out / "metrics.csv")
    for dose in config.doses:
        for overlap, _ in config.overlaps:
            group = [r for r in rows if (r.dose, r.overlap) == (dose, overlap)]
            assert sorted((r.method, r.gridsize) for r in group) == [
                ("constant", 0), ("ml", 0), ("pinn", 1), ("pinn", 2), ("pinn_self", 1), ("pinn_self", 2),
                ("ptychi-lsqml", 0)]
            nets = [r for r in group if r.method.startswith("pinn")]
            assert all(r.train_s > 0 and r.infer_s > 0 and r.recon_s == 0 and r.n_train > 0 for r in nets)
            for base in (r for r in group if r.method in ("ml", "ptychi-lsqml")):
                assert base.recon_s > 0 and base.train_s == base.infer_s == 0 and base.patterns_per_s > 0
            assert len({r.n_test for r in group}) == 1  # every method reconstructs the same test patterns
            assert all(r.n_train == r.n_test for r in nets if r.method == "pinn_self")  # trained on the test data
    manifest = json.loads((out / "manifest.json").read_text())["units"]
    assert list(manifest["train/1e3_dense_gs1_self"]["upstream"]) == ["datasets/1e3_dense/test.npz"]
    assert list(manifest["train/1e3_dense_gs1"]["upstream"]) == ["datasets/1e3_dense/train.npz"]
    dense = [r for r in rows if r.overlap == "dense" and r.dose == max(config.doses)]
    ssim = {r.method: r.amplitude_ssim for r in dense if not r.method.startswith("pinn")}
    assert ssim["ml"] > ssim["constant"] + 0.1  # the baselines' cells hold real reconstructions' scores
    assert ssim["ptychi-lsqml"] > ssim["constant"] + 0.1

    report = (out / "comparison.md").read_text()
    table = [line for line in report.splitlines() if line.startswith(("| 1e3 |", "| 1e5 |"))]
    # + per condition a line in each of the four head-to-head score tables and in the time table
    assert len(table) == len(raw) + 5 * len(config.doses) * len(config.overlaps)
    assert "| - | Poisson ML |" in report and "| - | pty-chi LSQML |" in report
    assert "logical CPU(s)" in report and "Devices the stages ran on: cpu" in report
    assert "| 1e3_dense_gs1_self |" in report  # the training table
    for name in ("ssim_vs_dose.png", "frc_vs_dose.png", "recon_1e3.png", "recon_1e5.png"):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in report
    train, test = (MemmapDatasetBridge(out / "datasets" / "1e3_dense" / f"{part}.npz") for part in ("train", "test"))
    assert train.xcoords.max() + config.data.N < test.xcoords.min()  # disjoint regions of one object
    np.testing.assert_array_equal(train.objectGuess, test.objectGuess)

    again = run_study(config, out, log=lambda line: None)
    # 4 datasets, 16 trainings and inferences, 8 baselines, 28 evaluations, the report
    assert again.ran == () and len(again.reused) == 4 + 16 + 16 + 8 + 28 + 1

    recon = out / "runs" / "1e5_sparse_ml" / "recon.npz"
    recon.write_bytes(recon.read_bytes()[:-10] + b"0123456789")  # a damaged output
    third = run_study(config, out, log=lambda line: None)
    assert "baseline/1e5_sparse_ml" in third.ran and "comparison/report" in third.ran
    assert set(third.ran) <= {"baseline/1e5_sparse_ml", "evaluate/1e5_sparse_ml", "comparison/report"}

    resolved = config.to_dict()
    resolved["baselines"][0]["iterations"] = 3
    fourth = run_study(parse_config(resolved), out, log=lambda line: None)
    assert {k.split("/")[0] for k in fourth.ran} == {"baseline", "evaluate", "comparison"}
    assert all(k.endswith("_ml") for k in fourth.ran if not k.startswith("comparison"))
    assert sum(k.startswith("baseline/") for k in fourth.ran) == len(config.doses) * len(config.overlaps)
    assert all(k in fourth.reused for k in again.reused if k.startswith(("train/", "infer/", "datasets/")))


def test_each_gridsize_trains_for_its_own_length_and_reuses_a_run_of_the_same_settings(tmp_path: Path) -> None:
    smoke = yaml.safe_load((PRESET_DIR / "smoke.yaml").read_text())
    smoke.update(doses=[1e5], overlaps={"dense": 0.7}, arms=["self"])
    smoke["train"].update(epochs=None, max_steps=3, patience=0)
    smoke["train_by_gridsize"] = {2: {"max_steps": 2}}
    config = parse_config(smoke)
    out = tmp_path / "study"
    out.mkdir()
    runner = Runner(out, log=lambda line: None)
    units = [u for u in plan_units(config, out, "ptycho-torch study", log=lambda line: None)
             if u.stage in ("datasets", "train")]
    for index, unit in enumerate(units, 1):
        runner.execute(unit, index, len(units))
    steps = {g: json.loads((out / "runs" / f"1e5_dense_gs{g}_self" / "train.json").read_text())["steps"]
             for g in (1, 2)}
    assert steps == {1: 3, 2: 2}

    only_two = dict(smoke, gridsizes=[2], train=dict(smoke["train"], max_steps=2))  # the base has gs2's length
    del only_two["train_by_gridsize"]
    again = Runner(out, log=lambda line: None)
    planned = [u for u in plan_units(parse_config(only_two), out, "ptycho-torch study", log=lambda line: None)
               if u.stage in ("datasets", "train")]
    for index, unit in enumerate(planned, 1):
        again.execute(unit, index, len(planned))
    assert again.ran == [] and "train/1e5_dense_gs2_self" in again.reused


def test_a_continued_gridsize_starts_from_the_same_arms_smaller_network_and_follows_it(tmp_path: Path) -> None:
    smoke = yaml.safe_load((PRESET_DIR / "smoke.yaml").read_text())
    smoke.update(doses=[1e5], overlaps={"dense": 0.7}, arms=["unseen", "self"], continue_from={2: 1})
    smoke["train"].update(epochs=None, max_steps=3, patience=0)
    smoke["train_by_gridsize"] = {2: {"max_steps": 2, "encoder": "pattern"}}
    out = tmp_path / "study"
    out.mkdir()
    lines: list[str] = []

    def run(raw: dict[str, object]) -> Runner:
        runner = Runner(out, log=lines.append)
        units = [u for u in plan_units(parse_config(raw), out, "ptycho-torch study", log=lambda line: None)
                 if u.stage in ("datasets", "train")]
        for index, unit in enumerate(units, 1):
            runner.execute(unit, index, len(units))
        return runner

    run(smoke)
    for arm in ("", "_self"):
        start, continued = out / "runs" / f"1e5_dense_gs1{arm}", out / "runs" / f"1e5_dense_gs2{arm}"
        metadata = load_bundle(continued / "wts.h5.zip").metadata
        assert metadata["init_from"] == {"file": "wts.h5.zip", "sha256": sha256_file(start / "wts.h5.zip")}
        record = json.loads((continued / "train.json").read_text())
        assert record["started_from"] == start.name
        assert record["start_seconds"] == json.loads((start / "train.json").read_text())["seconds"] > 0
        assert load_bundle(start / "wts.h5.zip").metadata.get("init_from") is None

    starts = {run["run"]: run["started_from"] for run in train_runs(out)}  # the report's Training table
    assert starts == {"1e5_dense_gs1": None, "1e5_dense_gs1_self": None, "1e5_dense_gs2": "1e5_dense_gs1",
                      "1e5_dense_gs2_self": "1e5_dense_gs1_self"}

    # a new start (gridsize 1 trained longer) trains the continued network again, from the new weights
    longer = dict(smoke, train=dict(smoke["train"], max_steps=4))
    again = run(longer)
    assert "train/1e5_dense_gs2_self" in again.ran
    assert any("gs2_self: running (inputs changed (" in line and "runs/1e5_dense_gs1_self/wts.h5.zip" in line
               for line in lines), "\n".join(lines)
    # without continue_from the gridsize-2 networks are other units: they train from scratch
    fresh = run(dict(longer, continue_from={}))
    assert {"train/1e5_dense_gs2", "train/1e5_dense_gs2_self"} <= set(fresh.ran)
    assert load_bundle(out / "runs" / "1e5_dense_gs2_self" / "wts.h5.zip").metadata.get("init_from") is None
