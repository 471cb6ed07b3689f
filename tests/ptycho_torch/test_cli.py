"""`ptycho-torch simulate` and `inspect` through main(argv), exit codes, real subprocesses, and a torch-free\nparser whose train defaults are TrainConfig's."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.cli import build_parser, main
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.train import TrainConfig

SMALL = ["--n-images", "16", "--N", "16", "--nphotons", "1000", "--no-progress"]


def test_simulate_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data.npz"
    assert main(["simulate", "--out", str(out), *SMALL, "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "float32 (16, 16, 16)" in printed and "mapped in place" in printed
    bridge = MemmapDatasetBridge(out)
    assert bridge.nphotons == 1000 and bridge.source_key == "diffraction"

    assert main(["inspect", str(out)]) == 0
    assert "float32 (16, 16, 16)" in capsys.readouterr().out

    assert main(["inspect", str(out), "--json", "--validate", "full"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_patterns"] == 16 and info["validation"] == "full" and info["checked_patterns"] == 16


def test_simulate_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.npz"
    assert main(["simulate", "--out", str(out), *SMALL, "--split", "0.5", "--legacy-key", "--scan", "random",
                 "--compress"]) == 0
    train, test = MemmapDatasetBridge(tmp_path / "s_train.npz"), MemmapDatasetBridge(tmp_path / "s_test.npz")
    assert train.source_key == test.source_key == "diff3d"
    assert train.xcoords.max() < test.xcoords.min()
    assert not out.exists()
    printed = capsys.readouterr().out
    assert "s_train.npz" in printed and "s_test.npz" in printed

    probe_out = tmp_path / "p.npz"
    assert main(["simulate", "--out", str(probe_out), "--n-images", "4", "--probe-from",
                 str(tmp_path / "s_train.npz"), "--no-progress"]) == 0
    np.testing.assert_array_equal(MemmapDatasetBridge(probe_out).probeGuess, train.probeGuess)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["inspect", "{tmp}/missing.npz"], "no such file"),
        (["inspect", "{tmp}/garbage.npz"], "corrupt or truncated"),
        (["simulate", "--out", "{tmp}/nodir/x.npz", *SMALL], "does not exist"),
        (["simulate", "--out", "{tmp}/x.npz", *SMALL, "--overlap", "1.5"], "overlap must be in [0, 1)"),
        (["simulate", "--out", "{tmp}/x.npz", *SMALL, "--probe-from", "{tmp}/missing.npz"], "no such file"),
    ],
)
def test_user_errors_exit_1_with_a_message_and_no_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all" * 10)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert err.startswith(f"ptycho-torch {argv[0]}: error:")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["simulate"]) == 2  # --out is required
    assert "--out" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0
    assert "simulate" in capsys.readouterr().out


def test_module_entry_point_in_a_real_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(out), *SMALL]) == 0
    proc = subprocess.run([sys.executable, "-m", "ptycho_torch", "inspect", str(out), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source_key"] == "diffraction"
    bad = subprocess.run([sys.executable, "-m", "ptycho_torch", "inspect", str(tmp_path / "none.npz")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_train_on_all_dark_data_is_a_user_error_not_a_crash(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    dark = tmp_path / "dark.npz"
    n = 16
    np.savez(dark, diffraction=np.zeros((8, n, n), np.float32), xcoords=np.arange(8.0) * 4,
             ycoords=np.zeros(8), probeGuess=np.ones((n, n), np.complex64))
    code = main(["train", "--data", str(dark), "--output-dir", str(tmp_path / "run"), "--epochs", "1",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "ptycho-torch train: error:" in err and "Traceback" not in err


def test_cli_defaults_are_the_trainconfig_defaults() -> None:
    args = build_parser().parse_args(["train", "--data", "d.npz", "--output-dir", "o"])
    defaults = TrainConfig(data="d.npz", output_dir="o")
    for name in ("epochs", "batch_size", "lr", "seed", "val_fraction", "gridsize", "K", "n_filters", "depth",
                 "loss", "grad_clip", "device", "precision", "compile", "num_workers", "max_steps", "patience",
                 "keep_best"):
        assert getattr(args, name) == getattr(defaults, name), name
    # no length flag: at most max_steps steps, ended earlier by early stopping (TRAIN-007)
    assert (defaults.epochs, defaults.steps, defaults.max_steps, defaults.patience) == (None, 0, 10_000, 1_000)
    assert (defaults.batch_size, defaults.lr, defaults.n_filters) == (16, 1e-3, 16)
    assert {f.name for f in fields(TrainConfig) if f.default is not MISSING} <= set(vars(args))  # a flag each


def test_the_reference_options_reach_the_trained_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ptycho_torch.bundle import load_bundle

    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), *SMALL]) == 0
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--output-dir", str(out), "--steps", "2", "--gridsize", "2",
                 "--groups-per-position", "2", "--channel-order", "quadrant", "--support", "8",
                 "--support-fill", "zero", "--probe-mask-radius", "6", "--merge", "central", "--encoder", "pattern",
                 "--threads", "1", "--no-progress"]) == 0
    bundle = load_bundle(out / "wts.h5.zip")
    model = bundle.config.model
    assert (model.support, model.support_fill, model.probe_mask_radius, model.merge_weights, model.encoder) == (
        8, "zero", 6.0, "central", "pattern")
    assert bundle.config.data.channel_order == "quadrant"
    assert bundle.metadata["train_config"]["groups_per_position"] == 2
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--output-dir", str(tmp_path / "bad"), "--support", "24",
                 "--steps", "1", "--no-progress"]) == 1
    assert "support = 24 is wider than the patch (N = 16)" in capsys.readouterr().err


def test_importing_the_cli_and_the_train_config_does_not_import_torch() -> None:
    code = ("import sys, ptycho_torch.cli, ptycho_torch.train; "
            "from ptycho_torch.train import TrainConfig; "
            "ptycho_torch.cli.build_parser().parse_args(['train', '--data', 'd', '--output-dir', 'o']); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"  # torch takes seconds to import; --help and usage errors need none
