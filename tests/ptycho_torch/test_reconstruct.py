"""`ptycho-torch reconstruct`: every method writes the recon.npz that `infer` writes, `evaluate` scores it,
and reconstruct.json records the settings and the fit."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.baselines import Method
from ptycho_torch.cli import RECONSTRUCT_METHODS, main
from ptycho_torch.simulate import simulate_dataset, write_npz

HAS_PTYCHI = importlib.util.find_spec("ptychi") is not None


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/ptycho_torch/conftest.py


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = simulate_dataset(36, nphotons=1e5, overlap=0.7, seed=2, N=32)
    return write_npz(tmp_path_factory.mktemp("data") / "scan.npz", data)


def test_the_cli_offers_every_method() -> None:
    assert set(RECONSTRUCT_METHODS) == {m.value for m in Method}


@pytest.mark.parametrize("method", ["ml", "epie"])
def test_reconstruct_then_evaluate(dataset: Path, tmp_path: Path, method: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """reconstruct -> recon.npz + reconstruct.json -> evaluate -> metrics.json, 10 iterations. Measured SSIM
    amplitude / phase: ML 0.87 / 0.42, ePIE 0.91 / 0.53; the constant object's 0.06 / 0.02."""
    out = tmp_path / "run"
    assert main(["reconstruct", "--method", method, "--data", str(dataset), "--output-dir", str(out),
                 "--iterations", "10", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "iteration 10/10: deviance" in printed and f"wrote {out / 'recon.npz'}" in printed
    with np.load(out / "recon.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["coverage", "object", "weight"]  # the record infer writes
        obj, coverage = npz["object"], npz["coverage"]
        assert obj.dtype == np.complex64 and coverage.dtype == np.bool_ and npz["weight"].dtype == np.float32
    assert coverage.any() and np.isnan(obj[~coverage]).all() and np.isfinite(obj[coverage]).all()
    record = json.loads((out / "reconstruct.json").read_text())
    assert record["method"] == method and record["iterations"] == 10 and record["n_patterns"] == 36
    assert record["config"]["iterations"] == 10 and record["data"] == str(dataset)
    history = record["history"]
    assert len(history) == 10 and history[-1]["deviance"] < history[0]["deviance"]
    assert record["seconds"] > 0 and record["device"] == "cpu"

    assert main(["evaluate", "--recon", str(out / "recon.npz"), "--truth", str(dataset)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for part in ("amplitude", "phase"):
        assert metrics[part]["ssim"] > metrics["baseline"][part]["ssim"] + 0.3, (part, metrics[part])


def test_ptychi_lsqml_runs_or_names_its_install(dataset: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reconstruct", "--method", "ptychi-lsqml", "--data", str(dataset), "--output-dir",
                 str(tmp_path), "--iterations", "3", "--device", "cpu", "--no-progress"])
    if HAS_PTYCHI:
        assert code == 0 and (tmp_path / "recon.npz").is_file()
        assert json.loads((tmp_path / "reconstruct.json").read_text())["method"] == "ptychi-lsqml"
    else:
        assert code == 1
        assert "pip install 'ptycho-harness[ptychi]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--iterations", "-1"], "iterations must be an integer >= 0"),
        (["--batch-size", "0"], "batch_size must be an integer >= 1"),
        (["--coverage-threshold", "2"], "coverage_threshold must be a finite number in (0, 1]"),
    ],
)
def test_bad_options_exit_1_with_the_reason(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            extra: list[str], needle: str) -> None:
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(tmp_path),
                 *extra]) == 1
    err = capsys.readouterr().err
    assert "ptycho-torch reconstruct: error:" in err and needle in err
    assert not (tmp_path / "recon.npz").exists()


def test_missing_data_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconstruct", "--method", "ml", "--data", str(tmp_path / "none.npz"), "--output-dir",
                 str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err


def _recon(path: Path, obj: np.ndarray) -> Path:
    from ptycho_torch.recon_file import ReconRecord, save_recon

    path.parent.mkdir(parents=True, exist_ok=True)
    coverage = np.isfinite(obj)
    save_recon(path, ReconRecord.masked(np.nan_to_num(obj), coverage, np.ones(obj.shape, dtype=np.float32)))
    return path


def test_init_from_is_recorded_by_name_sha256_and_scale(dataset: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    with np.load(dataset, allow_pickle=False) as npz:
        truth = npz["objectGuess"]
    start = _recon(tmp_path / "net" / "recon.npz", truth / 2)
    out = tmp_path / "run"
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(out),
                 "--iterations", "3", "--device", "cpu", "--init-from", str(start)]) == 0
    assert "amplitude scale fitted" in capsys.readouterr().out
    text = (out / "reconstruct.json").read_text()
    record = json.loads(text)
    assert record["init"]["name"] == "recon.npz" and str(tmp_path) not in text
    assert record["init"]["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    assert record["init"]["amplitude_scale"] > 1.5  # the start was halved
    assert record["config"]["holdout_fraction"] == 0.1 and record["holdout"]["n_patterns"] == 4
    assert all(h["holdout_deviance"] is not None for h in record["history"])
    plain = tmp_path / "plain"
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(plain),
                 "--iterations", "1", "--device", "cpu"]) == 0
    record = json.loads((plain / "reconstruct.json").read_text())
    assert record["init"] is None and record["holdout"] is None and record["config"]["holdout_fraction"] == 0
    pixels = tmp_path / "pixels"
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(pixels),
                 "--iterations", "2", "--device", "cpu", "--holdout-fraction", "0.1", "--holdout", "pixels"]) == 0
    record = json.loads((pixels / "reconstruct.json").read_text())
    assert record["config"]["holdout"] == "pixels" and record["holdout"]["kind"] == "pixels"
    assert record["holdout"]["pixels_per_pattern"] > 0


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file"),
    ("other frame", "but this dataset's object frame is 112x112"),
    ("all nan", "no pixel of its object is covered"),
    ("pickled", "not a readable .npz/.npy without pickle"),
    ("real", "expected a complex 2-D array named 'object'"),
])
def test_a_bad_init_file_is_named_with_what_to_do(dataset: Path, tmp_path: Path, case: str, expected: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "start.npz"
    if case == "other frame":
        _recon(path, np.ones((64, 80), dtype=np.complex64))
    elif case == "all nan":
        _recon(path, np.full((112, 112), np.nan, dtype=np.complex64))
    elif case == "pickled":
        np.savez(path, object=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "real":
        np.savez(path, object=np.ones((112, 112), dtype=np.float32))
    out = tmp_path / "run"
    code = main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(out),
                 "--iterations", "1", "--device", "cpu", "--init-from", str(path)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"--init-from {path}" in err and expected in err
    assert "recon.npz that `ptycho-torch infer`" in err  # what to pass instead
    assert not out.exists()


def test_ml_warmup_reaches_the_run_and_other_methods_refuse_it(dataset: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """--ml-warmup sets ML's damped-gradient iterations (ml.py; the default 30 is ReconstructionConfig's):
    without them the first iterations follow the exact Poisson gradient, so the fit differs."""
    deviances = {}
    for warmup in ("0", "30"):
        out = tmp_path / f"w{warmup}"
        assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(out),
                     "--iterations", "3", "--device", "cpu", "--no-progress", "--ml-warmup", warmup]) == 0
        record = json.loads((out / "reconstruct.json").read_text())
        assert record["config"]["ml_warmup"] == int(warmup)
        deviances[warmup] = [h["deviance"] for h in record["history"]]
    assert deviances["0"] != deviances["30"]
    default = tmp_path / "default"
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(default),
                 "--iterations", "3", "--device", "cpu", "--no-progress"]) == 0
    assert [h["deviance"] for h in json.loads((default / "reconstruct.json").read_text())["history"]] == \
        deviances["30"]
    capsys.readouterr()
    assert main(["reconstruct", "--method", "epie", "--data", str(dataset), "--output-dir", str(tmp_path / "e"),
                 "--ml-warmup", "5"]) == 1
    assert "--ml-warmup applies to --method ml only" in capsys.readouterr().err
    assert main(["reconstruct", "--method", "ml", "--data", str(dataset), "--output-dir", str(tmp_path / "n"),
                 "--ml-warmup", "-1"]) == 1
    assert "ml_warmup must be an integer >= 0" in capsys.readouterr().err
