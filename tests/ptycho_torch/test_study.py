"""`ptycho-torch study`: config validation, the train/test split, the resumable runner, the table, and the
smoke preset end to end (slow: it trains 8 small networks and runs 4 baseline reconstructions)."""
from __future__ import annotations

import csv
import fcntl
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.cli import main
from ptycho_torch.errors import PtychoTorchError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import make_probe
from ptycho_torch.study import (
    DataSpec,
    Runner,
    StudyConfigError,
    StudyError,
    Unit,
    _locked,
    dose_label,
    load_config,
    load_sources,
    parse_config,
    run_study,
    scan_layout,
)
from ptycho_torch.study_report import COLUMNS, Row, csv_text, head_to_head, read_csv

# ----------------------------------------------------------------------------------------------- config


def _study(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = tmp_path / "study.yaml"
    config.write_text(text)
    code = main(["study", "--config", str(config), "--output-dir", str(tmp_path / "out")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("dose: [1000]\n", ["unknown key 'dose'", "did you mean 'doses'"]),
        ("train: {epoch: 3}\n", ["unknown key 'train.epoch'", "did you mean 'epochs'"]),
        ("data: {object: {colour: red}}\n", ["unknown key 'data.object.colour'", "feature_px"]),
        ("baseline: {seed: 3}\n", ["unknown key 'baseline.seed'"]),
        ("evaluation: {registration: true}\n", ["unknown key 'evaluation.registration'", "'register'"]),
        ("doses: [-5]\n", ["doses[0]", "must be > 0"]),
        ("doses: [1e3, lots]\n", ["doses[1]", "must be a number"]),
        ("doses: [1e3, 1000]\n", ["doses", "repeats a dose"]),
        ("overlaps: {dense: 1.5}\n", ["overlaps.dense", "[0, 1)"]),
        ("overlaps: [0.7]\n", ["overlaps", "mapping"]),
        ("gridsizes: [1, 1]\n", ["gridsizes", "distinct"]),
        ("train: {epochs: two}\n", ["train.epochs", "must be an integer"]),
        ("train: {epochs: 0}\n", ["train", "epochs must be an integer >= 1"]),
        ("train: {loss: l2}\n", ["train", "'l2'"]),
        ("baseline: {method: sirt}\n", ["baseline", "'sirt' is not a known choice"]),
        ("baseline: {refine_probe: 1}\n", ["baseline.refine_probe", "true or false"]),
        ("data: {N: 60}\n", ["data.N", "divisible by 2**train.depth"]),
        ("data: {scan: spiral}\n", ["data.scan", "spiral"]),
        ("data: {object_size: 140}\n", ["overlaps.dense", "object_size"]),
        ("data: {N: 32, object_size: 120}\n", ["overlaps.sparse", "at least 4 in each"]),
        ("seeds: {data: -1}\n", ["seeds", "data must be >= 0"]),
        ("seeds: {train: 1.5}\n", ["seeds.train", "must be an integer"]),
        ("doses: [1\n", ["not valid YAML"]),
        ("- 1\n- 2\n", ["(top level)", "mapping"]),
    ],
)
def test_bad_config_is_a_clear_error_with_the_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       text: str, needles: list[str]) -> None:
    code, err = _study(tmp_path, text, capsys)
    assert code == 1, err
    assert err.startswith("ptycho-torch study: error: study config"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "out").exists()  # validated before anything is written


def test_missing_config_and_source_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "--config", str(tmp_path / "none.yaml"), "--output-dir", str(tmp_path)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["study", "--output-dir", str(tmp_path)]) == 2  # one of --config / --preset is required
    assert main(["study", "--preset", "smoke", "--config", "x.yaml", "--output-dir", str(tmp_path)]) == 2
    assert main(["study", "--preset", "huge", "--output-dir", str(tmp_path)]) == 2
    with pytest.raises(StudyConfigError, match="exactly one"):
        load_config(None)


def test_defaults_and_yaml_exponents() -> None:
    config = parse_config({"doses": ["1e3", 1e4, 100000]})  # YAML 1.1 reads 1e3 as a string
    assert config.doses == (1e3, 1e4, 1e5)
    assert config.overlaps == (("dense", 0.7), ("sparse", 0.2))
    assert config.gridsizes == (1, 2)
    assert config.baseline.method.value == "ml" and config.baseline.seed == 0
    assert config.evaluation.register is False and config.evaluation.fit_scale is True
    round_trip = parse_config(config.to_dict())
    assert round_trip.to_dict() == config.to_dict()


def test_presets_validate_and_span_the_anchor_grid() -> None:
    smoke, full = load_config(preset="smoke"), load_config(preset="full")
    assert full.doses == (1e3, 1e4, 1e5)
    assert dict(full.overlaps) == {"dense": 0.7, "sparse": 0.2} == dict(smoke.overlaps)
    assert full.gridsizes == smoke.gridsizes == (1, 2)
    assert smoke.train.device == "cpu" and smoke.train.epochs <= 2 and smoke.data.probe.source == "synthetic"
    assert full.train.device == "auto" and full.data.N == 64


def test_probe_from_replaces_the_probe_and_sets_n(tmp_path: Path) -> None:
    probe = make_probe(16, defocus_rad=2.0)
    path = tmp_path / "probe.npz"
    np.savez(path, probeGuess=probe)
    config = load_config(preset="smoke", probe_from=path)
    assert config.data.N == 16 and config.data.probe.source == str(path.resolve())
    sources = load_sources(config)
    np.testing.assert_array_equal(sources.probe, probe)
    assert sources.object.shape == (config.data.object_size,) * 2
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(StudyError, match="no 'probeGuess' array"):
        load_config(preset="smoke", probe_from=tmp_path / "other.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(StudyError, match="not a readable .npz"):
        load_config(preset="smoke", probe_from=tmp_path / "bad.npz")


def test_dose_labels() -> None:
    assert [dose_label(d) for d in (1e3, 2500, 1e5, 0.5, 12345)] == ["1e3", "2.5e3", "1e5", "5e-1", "1.234e4"]


# ----------------------------------------------------------------------------------------------- split


@pytest.mark.parametrize(("overlap", "scan"), [(0.7, "grid"), (0.2, "grid"), (0.5, "random")])
def test_train_and_test_patch_windows_never_share_a_pixel(overlap: float, scan: str) -> None:
    data = DataSpec(N=32, object_size=256, test_fraction=0.3, scan=scan)
    layout = scan_layout(data, overlap, seed=3)
    assert layout.n_train > 0 and layout.n_test > 0
    assert not (layout.train & layout.test).any()
    rounded = np.floor(layout.xcoords + 0.5)
    # a window covers [c - N/2, c + N/2): disjoint when the centres are N apart (one more for the bilinear tap)
    assert rounded[layout.train].max() + data.N + 1 <= rounded[layout.test].min()
    assert layout.n_train + layout.n_test + layout.n_dropped == len(layout.xcoords)
    lo = data.N // 2 + 2
    assert layout.xcoords.min() >= lo and layout.xcoords.max() <= data.object_size - lo


# ----------------------------------------------------------------------------------------------- runner


class _Toy:
    """Units writing small files, recording which ran and with which resume flag."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, bool]] = []

    def writer(self, name: str, rel: str, text: str, fail: Exception | None = None) -> Callable[[bool], None]:
        def run(resume: bool) -> None:
            self.calls.append((name, resume))
            if fail is not None:
                raise fail
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(text)

        return run

    def units(self, setting: int = 1, text_b: str = "b") -> list[Unit]:
        return [
            Unit("make", "a", {"setting": setting}, (), ("a/out.txt",), self.writer("a", "a/out.txt", f"a{setting}")),
            Unit("make", "c", {}, (), ("c/out.txt",), self.writer("c", "c/out.txt", "c")),
            Unit("use", "b", {}, ("a/out.txt",), ("b/out.txt",), self.writer("b", "b/out.txt", text_b)),
        ]


def _run(root: Path, units: list[Unit], log: list[str] | None = None) -> Runner:
    runner = Runner(root, log=(log if log is not None else []).append)
    for i, unit in enumerate(units, 1):
        runner.execute(unit, i, len(units))
    return runner


def test_runner_reuses_and_reruns_exactly_what_changed(tmp_path: Path) -> None:
    toy = _Toy(tmp_path)
    assert _run(tmp_path, toy.units()).ran == ["make/a", "make/c", "use/b"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["units"]["use/b"]
    assert set(entry["outputs"]) == {"b/out.txt"} and manifest["pending"] == {}
    assert entry["upstream"] == {"a/out.txt": manifest["units"]["make/a"]["outputs"]["a/out.txt"]}
    assert _run(tmp_path, toy.units()).reused == ["make/a", "make/c", "use/b"]

    (tmp_path / "b" / "out.txt").write_text("tampered")  # a modified output: only its unit runs again
    log: list[str] = []
    runner = _run(tmp_path, toy.units(), log)
    assert runner.ran == ["use/b"] and (tmp_path / "b" / "out.txt").read_text() == "b"
    assert "[3/3] use        b: running (b/out.txt was modified)" in log

    (tmp_path / "a" / "out.txt").unlink()  # restored with the same bytes: its reader needs no rerun
    assert _run(tmp_path, toy.units()).ran == ["make/a"]

    log.clear()
    runner = _run(tmp_path, toy.units(setting=2), log)  # a changed config slice: the unit and its reader
    assert runner.ran == ["make/a", "use/b"] and runner.reused == ["make/c"]
    assert any("make       a: running (settings changed)" in line for line in log)
    assert any("use        b: running (inputs changed (a/out.txt))" in line for line in log)


def test_interrupted_unit_resumes_and_failure_names_the_unit(tmp_path: Path) -> None:
    toy = _Toy(tmp_path)
    units = toy.units()
    broken = Unit("use", "b", {}, ("a/out.txt",), ("b/out.txt",),
                  toy.writer("b", "b/out.txt", "b", fail=PtychoTorchError("disk full")))
    with pytest.raises(StudyError, match=r"stage use/b failed: disk full.*run the same command again"):
        _run(tmp_path, [*units[:2], broken])
    assert "use/b" in json.loads((tmp_path / "manifest.json").read_text())["pending"]
    toy.calls.clear()
    _run(tmp_path, units)
    assert toy.calls == [("b", True)]  # same inputs as the interrupted attempt: told to resume

    (tmp_path / "manifest.json").write_text("{not json")
    runner = Runner(tmp_path, log=lambda line: None)
    assert runner.manifest.warning and "every stage runs again" in runner.manifest.warning


def test_one_study_per_output_folder(tmp_path: Path) -> None:
    with open(tmp_path / ".study.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StudyError, match="another `ptycho-torch study` is running"), _locked(tmp_path):
            pass
    with _locked(tmp_path):
        pass


# ----------------------------------------------------------------------------------------------- table


def _row(method: str, gridsize: int, ssim: float, **changes: float) -> Row:
    values = {c: 1.0 for c in COLUMNS}
    values.update(dose=1e3, overlap="dense", overlap_fraction=0.7, gridsize=gridsize, method=method,
                  amplitude_ssim=ssim, phase_ssim=ssim, n_train=10, n_test=5, **changes)
    return Row(**values)  # type: ignore[arg-type]


def test_csv_round_trip_and_head_to_head(tmp_path: Path) -> None:
    rows = [_row("pinn", 1, 0.4, infer_s=0.5), _row("pinn", 2, 0.6, infer_s=0.7), _row("ml", 0, 0.5, recon_s=9.0),
            _row("constant", 0, 0.1)]
    path = tmp_path / "metrics.csv"
    path.write_text(csv_text(rows))
    assert read_csv(path) == rows
    head = head_to_head(rows)[0]
    ssim = head.scores[0]
    assert (ssim.name, ssim.network, ssim.gridsize, ssim.baseline, ssim.constant) == ("amplitude_ssim", 0.6, 2, 0.5, 0.1)
    assert ssim.winner == "network" and head.network_time_s == 0.5 and head.baseline_time_s == 9.0
    flat = head_to_head([_row("pinn", 1, 0.05), _row("ml", 0, 0.0), _row("constant", 0, 0.2)])[0].scores[0]
    assert flat.winner == "neither"  # better than the baseline, but not better than a flat image
    close = head_to_head([_row("pinn", 1, 0.51), _row("ml", 0, 0.5), _row("constant", 0, 0.2)])[0].scores[0]
    assert close.winner == "tie"  # within 0.02 SSIM of each other
    barely = head_to_head([_row("pinn", 1, 0.21), _row("ml", 0, 0.0), _row("constant", 0, 0.2)])[0].scores[0]
    assert barely.winner == "neither"  # above the constant by less than the margin
    path.write_text("dose,method\n1,ml\n")
    with pytest.raises(ValueError, match="columns"):
        read_csv(path)


# ----------------------------------------------------------------------------------------------- smoke


@pytest.mark.slow
def test_smoke_preset_fills_the_table_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    assert main(["study", "--preset", "smoke", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 reused" in printed and "study finished" in printed

    config = load_config(preset="smoke")
    with open(out / "metrics.csv", newline="") as handle:
        raw = list(csv.DictReader(handle))
    per_condition = len(config.gridsizes) + 2  # networks, the baseline, the constant object
    assert len(raw) == len(config.doses) * len(config.overlaps) * per_condition
    for line in raw:  # every cell filled, every number finite: no empty baseline cells
        assert tuple(line) == COLUMNS
        for column in COLUMNS:
            assert line[column] != "", (column, line)
            if column not in ("overlap", "method"):
                assert math.isfinite(float(line[column])), (column, line)
    rows = read_csv(out / "metrics.csv")
    for dose in config.doses:
        for overlap, _ in config.overlaps:
            group = [r for r in rows if (r.dose, r.overlap) == (dose, overlap)]
            assert sorted((r.method, r.gridsize) for r in group) == [("constant", 0), ("ml", 0), ("pinn", 1),
                                                                     ("pinn", 2)]
            nets, base = [r for r in group if r.method == "pinn"], next(r for r in group if r.method == "ml")
            assert all(r.train_s > 0 and r.infer_s > 0 and r.recon_s == 0 and r.n_train > 0 for r in nets)
            assert base.recon_s > 0 and base.train_s == base.infer_s == 0 and base.patterns_per_s > 0
            assert len({r.n_test for r in group}) == 1  # every method reconstructs the same test patterns
    dense = [r for r in rows if r.overlap == "dense" and r.dose == max(config.doses)]
    ssim = {r.method: r.amplitude_ssim for r in dense if r.method != "pinn"}
    assert ssim["ml"] > ssim["constant"] + 0.1  # the baseline's cells hold a real reconstruction's scores

    report = (out / "comparison.md").read_text()
    table = [line for line in report.splitlines() if line.startswith(("| 1e3 |", "| 1e5 |"))]
    assert len(table) == len(raw) + len(config.doses) * len(config.overlaps)  # + the head-to-head lines
    assert "| - | Poisson ML |" in report and "logical CPU(s)" in report and "Devices the stages ran on: cpu" in report
    for name in ("ssim_vs_dose.png", "frc_vs_dose.png", "recon_1e3.png", "recon_1e5.png"):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in report
    train, test = (MemmapDatasetBridge(out / "datasets" / "1e3_dense" / f"{part}.npz") for part in ("train", "test"))
    assert train.xcoords.max() + config.data.N < test.xcoords.min()  # disjoint regions of one object
    np.testing.assert_array_equal(train.objectGuess, test.objectGuess)

    again = run_study(config, out, log=lambda line: None)
    assert again.ran == () and len(again.reused) == 41

    recon = out / "runs" / "1e5_sparse_ml" / "recon.npz"
    recon.write_bytes(recon.read_bytes()[:-10] + b"0123456789")  # a damaged output
    third = run_study(config, out, log=lambda line: None)
    assert "baseline/1e5_sparse_ml" in third.ran and "comparison/report" in third.ran
    assert set(third.ran) <= {"baseline/1e5_sparse_ml", "evaluate/1e5_sparse_ml", "comparison/report"}

    changed = parse_config({**config.to_dict(), "baseline": {**config.to_dict()["baseline"], "iterations": 3}})
    fourth = run_study(changed, out, log=lambda line: None)
    assert {k.split("/")[0] for k in fourth.ran} == {"baseline", "evaluate", "comparison"}
    assert all(k.endswith("_ml") for k in fourth.ran if not k.startswith("comparison"))
    assert sum(k.startswith("baseline/") for k in fourth.ran) == len(config.doses) * len(config.overlaps)
    assert all(k in fourth.reused for k in again.reused if k.startswith(("train/", "infer/", "datasets/")))
