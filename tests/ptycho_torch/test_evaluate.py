"""`ptycho-torch evaluate` through main(argv): metrics.json layout, Infinity, baseline, figure, errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ptycho_torch.cli import main
from ptycho_torch.evaluate import evaluate_files, scored_images
from ptycho_torch.region import bounding_box


def _truth(shape: tuple[int, int] = (64, 64), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amplitude = 0.4 + 0.6 * (gaussian_filter(rng.random(shape), 2) > 0.5) + 0.1 * rng.random(shape)
    phase = gaussian_filter(rng.standard_normal(shape), 2) * 3
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def _coverage(shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    coverage = np.zeros(shape, dtype=bool)
    coverage[8:56, 10:54] = True
    return coverage


def _write(tmp_path: Path, obj: np.ndarray, truth: np.ndarray, coverage: np.ndarray | None = None) -> list[str]:
    recon = tmp_path / "run" / "recon.npz"
    recon.parent.mkdir(exist_ok=True)
    if coverage is None:
        np.savez(recon, object=obj)
    else:
        np.savez(recon, object=np.where(coverage, obj, np.nan + 0j).astype(np.complex64), coverage=coverage)
    np.savez(tmp_path / "data.npz", objectGuess=truth, xcoords=np.zeros(3))
    return ["evaluate", "--recon", str(recon), "--truth", str(tmp_path / "data.npz")]


def test_perfect_reconstruction_scores_infinity_and_beats_the_constant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth()
    assert main(_write(tmp_path, truth, truth, _coverage())) == 0
    out = tmp_path / "run"  # the default output dir is the recon's folder
    text = (out / "metrics.json").read_text()
    assert '"psnr": Infinity' in text
    report = json.loads(text)
    for quantity in ("amplitude", "phase"):
        assert set(report[quantity]) == {"mae", "psnr", "ssim", "frc_resolution"}
        assert report[quantity]["ssim"] == pytest.approx(1.0, abs=1e-6)
        assert math.isinf(report[quantity]["psnr"])
        assert report["baseline"][quantity]["ssim"] < 0.9
    assert report["amplitude_scale"] == 1.0
    assert report["inputs"]["covered_pixels"] == int(_coverage().sum())
    printed = capsys.readouterr().out
    assert "recon" in printed and "constant" in printed and "amplitude ssim" in printed
    assert (out / "comparison.png").read_bytes().startswith(b"\x89PNG")


def test_noisy_reconstruction_into_another_output_dir(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth()
    noise = np.random.default_rng(1).standard_normal(truth.shape) * 0.1
    argv = _write(tmp_path, truth + noise.astype(np.complex64), truth)  # no coverage array: all finite
    assert main([*argv, "--output-dir", str(tmp_path / "eval"), "--no-fit-scale"]) == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.3 < report["amplitude"]["ssim"] < 0.99 and math.isfinite(report["amplitude"]["psnr"])
    assert report["amplitude"]["ssim"] > report["baseline"]["amplitude"]["ssim"]
    assert report["amplitude_scale"] == 1.0 and report["inputs"]["fit_scale"] is False
    lines = {line.split()[0] + " " + line.split()[1]: line.split()[-2:]
             for line in capsys.readouterr().out.splitlines() if line.startswith(("amplitude", "phase"))}
    assert float(lines["amplitude ssim"][0]) == pytest.approx(report["amplitude"]["ssim"], rel=1e-3)
    assert float(lines["amplitude ssim"][1]) == pytest.approx(report["baseline"]["amplitude"]["ssim"], rel=1e-3)


def test_global_scale_and_phase_are_fitted_away(tmp_path: Path) -> None:
    truth = _truth()
    recon = truth * np.complex64(1.7 * np.exp(0.8j))  # neither is measurable by ptychography
    assert main(_write(tmp_path, recon, truth, _coverage())) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["amplitude_scale"] == pytest.approx(1 / 1.7, rel=1e-4)
    assert report["amplitude"]["psnr"] > 100 and report["phase"]["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_the_figure_shows_the_reconstruction_as_it_was_scored(tmp_path: Path) -> None:
    truth = _truth()
    rows, cols = np.indices(truth.shape)
    ramp = 0.05 * cols - 0.03 * rows  # removed before scoring, so removed before showing too
    recon = 1.5 * truth * np.exp(1j * (ramp + 0.7))
    argv = _write(tmp_path, recon, truth, _coverage())
    report, obj, truth_arr = evaluate_files(argv[2], argv[4])
    shown = scored_images(obj, truth_arr, report)
    assert shown.box == bounding_box(_coverage()) and shown.region.all()
    assert shown.scale == report.scores.amplitude_scale and shown.shift == report.scores.registration.shift
    assert list(report.to_dict()) == ["amplitude", "phase", "registration", "amplitude_scale", "notes", "frc",
                                      "baseline", "inputs"]  # metrics.json's layout
    phase_error = np.angle(shown.recon * np.conj(truth[shown.box].astype(np.complex128)))
    assert np.abs(phase_error).max() < 1e-5  # the phase shown is the truth's: ramp and offset are gone
    np.testing.assert_allclose(np.abs(shown.recon), np.abs(truth[shown.box]), rtol=1e-5)
    assert main(argv) == 0 and (tmp_path / "run" / "comparison.png").read_bytes().startswith(b"\x89PNG")


def test_a_shifted_reconstruction_is_registered(tmp_path: Path) -> None:
    truth = _truth()
    shifted = np.roll(truth, (2, -1), axis=(0, 1))
    assert main(_write(tmp_path, shifted, truth, _coverage())) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["registration"]["shift"] == pytest.approx([-2.0, 1.0], abs=0.1)
    assert report["amplitude"]["ssim"] > 0.95


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("two_complex", "exactly one complex 2-D array"),
        ("shape", "must be stitched in the truth's pixel frame"),
        ("no_truth_key", "no 'objectGuess' array"),
        ("missing", "no such file"),
        ("pickle", "without pickle"),
        ("not_zip", "not a readable"),
        ("bad_coverage", "'coverage' must be bool"),
    ],
)
def test_bad_inputs_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                    needle: str) -> None:
    truth = _truth((32, 32))
    recon, truth_path = tmp_path / "recon.npz", tmp_path / "truth.npz"
    np.savez(truth_path, objectGuess=truth)
    if case == "two_complex":
        np.savez(recon, a=truth, b=truth)
    elif case == "shape":
        np.savez(recon, object=truth[:30])
    elif case == "no_truth_key":
        np.savez(recon, object=truth)
        np.savez(truth_path, something=truth)
    elif case == "missing":
        recon = tmp_path / "none.npz"
    elif case == "pickle":
        np.savez(recon, object=np.array([{"a": 1}], dtype=object))
    elif case == "not_zip":
        recon.write_bytes(b"garbage" * 20)
    elif case == "bad_coverage":
        np.savez(recon, object=truth, coverage=np.ones((32, 32), dtype=np.uint8))
    code = main(["evaluate", "--recon", str(recon), "--truth", str(truth_path)])
    err = capsys.readouterr().err
    assert code == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_a_single_unnamed_complex_array_and_npy_inputs_are_accepted(tmp_path: Path) -> None:
    truth = _truth((40, 40))
    np.savez(tmp_path / "r.npz", whatever=truth, counts=np.ones(3))
    np.save(tmp_path / "t.npy", truth)
    assert main(["evaluate", "--recon", str(tmp_path / "r.npz"), "--truth", str(tmp_path / "t.npy")]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
