"""The training loop: outputs, intensity scale from the counts, reproducibility, resume (in process, after SIGKILL,
and under DDP with 2 processes), NaN handling, CLI errors."""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.bundle import BUNDLE_NAME, load_bundle, sha256_file
from ptycho_torch.cli import main
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.errors import TrainError, TrainingDivergedError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import SimulatedData, simulate_dataset, write_npz
from ptycho_torch.train.checkpoint import CHECKPOINT_NAME
from ptycho_torch.train.config import TrainConfig, TrainResult
from ptycho_torch.train.loop import train

REPO = Path(__file__).resolve().parents[3]
TINY = {"epochs": 2, "batch_size": 8, "n_filters": 4, "depth": 2, "lr": 3e-3}
TINY_FLAGS = ["--batch-size", "8", "--n-filters", "4", "--depth", "2", "--lr", "3e-3", "--no-progress"]


def tiny_data(n_images: int = 36, seed: int = 0) -> SimulatedData:
    return simulate_dataset(n_images, nphotons=1e3, overlap=0.7, seed=seed, N=16)


def tiny_dataset(path: Path, n_images: int = 36, seed: int = 0) -> Path:
    """36 patterns of 16 x 16: 4 validation groups and 32 training groups (4 batches of 8)."""
    return write_npz(path, tiny_data(n_images, seed))


def _config(tmp_path: Path, name: str = "run", data: Path | None = None, **overrides: Any) -> TrainConfig:
    data = data or tmp_path / "data.npz"
    if not data.exists():
        tiny_dataset(data)
    return TrainConfig(data=str(data), output_dir=str(tmp_path / name), **{**TINY, **overrides})


def _weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_bundle(output_dir / BUNDLE_NAME).model.state_dict()


def _checkpoint(output_dir: Path) -> dict[str, Any]:
    return torch.load(output_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class Run:
    """A finished run that tests only read (or copy before they continue it): its config, result and stdout."""

    config: TrainConfig
    result: TrainResult
    printed: str

    @property
    def out(self) -> Path:
        return Path(self.config.output_dir)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny dataset, written once: the shared runs and the tests that continue them must see the
    same file (its SHA256, zip timestamps included, is part of a checkpoint's identity)."""
    return tiny_dataset(tmp_path_factory.mktemp("data") / "data.npz")


def _train_once(tmp_path_factory: pytest.TempPathFactory, data: Path, name: str, **overrides: Any) -> Run:
    config = _config(tmp_path_factory.mktemp(name), data=data, **overrides)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        result = train(config, progress=False)
    return Run(config, result, printed.getvalue())


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Run:
    """The default run (TINY: seed 0, 2 epochs of 4 steps), trained once: the outputs test reads it, and it is
    the uninterrupted run that the reproducibility, resume and NaN tests compare theirs with."""
    return _train_once(tmp_path_factory, data, "two_epochs")


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Run:
    """The default run stopped after epoch 1; tests that resume it work on a copy (`_copy_run`)."""
    return _train_once(tmp_path_factory, data, "one_epoch", epochs=1)


def _copy_run(run: Run, to: Path) -> Path:
    shutil.copytree(run.out, to, dirs_exist_ok=True)
    return to


def test_training_writes_every_output(two_epochs: Run) -> None:
    config, result, out, printed = two_epochs.config, two_epochs.result, two_epochs.out, two_epochs.printed
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and "patterns/s" in printed
    assert f"lr {3e-3 * 8 / 50:.3g} " in printed  # 8 steps into the default warm-up of 50
    assert len(result.history) == 2 and all(np.isfinite(r.train_loss) for r in result.history)
    assert all(np.isfinite(r.val_loss) and r.patterns_per_s > 0 for r in result.history)
    document = json.loads((out / "history.json").read_text())
    history = document["epochs"]
    assert [h["epoch"] for h in history] == [1, 2] and history[1]["train_loss"] == result.history[1].train_loss
    assert [h["step"] for h in history] == [4, 8] and document["steps"] == 8 and document["restarts"] == []
    assert document["format"] == 2 and document["threads"] == result.threads >= 1
    assert document["flat_loss"] > document["best_loss"] and np.isfinite(history[1]["gap_closed"])
    assert (out / "loss_curve.png").read_bytes().startswith(b"\x89PNG")
    checkpoint = _checkpoint(out)  # weights_only=True: tensors and plain containers only
    assert checkpoint["epoch"] == 2 and set(checkpoint) >= {"model", "optimizer", "scaler", "rng", "sampler"}
    bundle = load_bundle(out / BUNDLE_NAME)
    assert (out / f"{BUNDLE_NAME}.sha256").exists()
    meta = bundle.metadata
    assert meta["seed"] == 0 and meta["epochs"] == 2 and meta["device"] == "cpu" and meta["world_size"] == 1
    assert meta["dataset"]["sha256"] == sha256_file(config.data)
    assert meta["final_train_loss"] == result.history[-1].train_loss
    assert {"torch", "numpy", "safetensors", "ptycho_torch", "python"} <= set(meta["versions"])
    assert meta["intensity_scale"] == pytest.approx(float(bundle.model.intensity_scale), rel=1e-6)
    assert bundle.config.model.n_filters == 4 and bundle.config.data.N == 16
    assert not list(out.glob("*.part"))  # every write was atomic


def test_intensity_scale_comes_from_the_measured_counts_not_the_metadata(tmp_path: Path) -> None:
    data = tiny_data()
    write_npz(tmp_path / "data.npz", replace(data, nphotons=1e9))  # metadata wildly wrong
    train(_config(tmp_path, epochs=1), progress=False)
    counts = float(np.mean(np.sum(data.diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    expected = physics.intensity_scale(torch.from_numpy(data.probeGuess), counts)
    bundle = load_bundle(tmp_path / "run" / BUNDLE_NAME)
    assert bundle.metadata["intensity_scale"] == pytest.approx(expected, rel=1e-9)
    assert bundle.metadata["intensity_scale"] != pytest.approx(
        physics.intensity_scale(torch.from_numpy(data.probeGuess), 1e9), rel=0.5)


def test_same_seed_same_run_other_seed_other_run(tmp_path: Path, data: Path, two_epochs: Run) -> None:
    first = two_epochs.result
    second = train(_config(tmp_path, "b", data=data), progress=False)
    train(_config(tmp_path, "c", data=data, seed=1), progress=False)
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]
    assert [r.val_loss for r in first.history] == [r.val_loss for r in second.history]
    wa, wb, wc = _weights(two_epochs.out), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_continues_exactly_where_the_run_stopped(tmp_path: Path, data: Path, one_epoch: Run,
                                                        two_epochs: Run) -> None:
    """Epoch 1, then resumed for epoch 2, equals the 2 epochs run straight: model, optimizer, RNG and sampler
    state all come back (epoch 2 reshuffles and draws from the restored generators)."""
    _copy_run(one_epoch, tmp_path / "split")
    resumed = train(_config(tmp_path, "split", data=data, epochs=2), resume=True, progress=False)
    assert resumed.resumed_from_epoch == 1
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in two_epochs.result.history]
    ws, wr = _weights(two_epochs.out), _weights(tmp_path / "split")
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_resume_refuses_what_would_not_continue_the_same_run(tmp_path: Path, data: Path,
                                                              one_epoch: Run) -> None:
    with pytest.raises(TrainError, match="no checkpoint"):
        train(_config(tmp_path, data=data, epochs=1), resume=True, progress=False)
    _copy_run(one_epoch, tmp_path / "run")
    with pytest.raises(TrainError, match="lr: checkpoint 0.003 vs now 0.01"):
        train(_config(tmp_path, data=data, epochs=2, lr=1e-2), resume=True, progress=False)
    other = tiny_dataset(tmp_path / "other.npz", seed=5)
    with pytest.raises(TrainError, match="trained on other data"):
        train(_config(tmp_path, data=other, epochs=2), resume=True, progress=False)
    state = _checkpoint(tmp_path / "run")
    state["world_size"] = 2  # as if written under torchrun --nproc_per_node=2
    torch.save(state, tmp_path / "run" / CHECKPOINT_NAME)
    with pytest.raises(TrainError, match=re.escape("written by 2 training process(es), this run has 1")):
        train(_config(tmp_path, data=data, epochs=2), resume=True, progress=False)


def test_a_checkpoint_older_than_a_setting_resumes_at_that_settings_default(tmp_path: Path, data: Path,
                                                                            one_epoch: Run) -> None:
    _copy_run(one_epoch, tmp_path / "run")
    state = _checkpoint(tmp_path / "run")
    for newer in ("support", "support_fill", "probe_mask_radius", "merge", "channel_order", "groups_per_position"):
        del state["config"][newer]  # as a checkpoint written before these settings existed
    torch.save(state, tmp_path / "run" / CHECKPOINT_NAME)
    assert train(_config(tmp_path, data=data, epochs=2), resume=True, progress=False).resumed_from_epoch == 1
    torch.save(state, tmp_path / "run" / CHECKPOINT_NAME)
    with pytest.raises(TrainError, match="support: checkpoint 0 vs now 8"):
        train(_config(tmp_path, data=data, epochs=2, support=8), resume=True, progress=False)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path: Path, data: Path,
                                                                             two_epochs: Run) -> None:
    config = _config(tmp_path, data=data, epochs=2)
    with pytest.raises(TrainingDivergedError) as info:
        train(config, progress=False, debug_nan_at_step=6)  # 4 steps per epoch: step 6 is in epoch 2
    message = str(info.value)
    assert "became nan at epoch 2, step 6" in message and "--lr" in message and "is kept" in message
    out = Path(config.output_dir)
    checkpoint = _checkpoint(out)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())
    assert not (out / BUNDLE_NAME).exists()
    resumed = train(config, resume=True, progress=False)  # the kept checkpoint is a working one
    assert [r.epoch for r in resumed.history] == [1, 2]
    ws, wr = _weights(two_epochs.out), _weights(out)  # the same run as one that never saw the NaN
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_nan_through_the_cli_is_exit_1_without_traceback(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_dataset(tmp_path / "data.npz")
    code = main(["train", "--data", str(data), "--output-dir", str(tmp_path / "o"), "--epochs", "1",
                 *TINY_FLAGS, "--debug-nan-at-step", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "epoch 1, step 1" in err and "no checkpoint was written yet" in err


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--epochs", "0"], "--epochs must be an integer >= 1"),
        (["--lr", "-1"], "--lr must be a finite number > 0"),
        (["--val-fraction", "1.5"], "--val-fraction must be a finite number in [0, 1)"),
        (["--depth", "5"], "divisible by 2**depth"),
        (["--device", "tpu"], "unknown device"),
        (["--gridsize", "3", "--K", "4"], "cannot form groups"),
    ],
)
def test_bad_settings_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                      needle: str) -> None:
    data = tiny_dataset(tmp_path / "data.npz")
    code = main(["train", "--data", str(data), "--output-dir", str(tmp_path / "o"), *TINY_FLAGS, *flags])
    err = capsys.readouterr().err
    assert code == 1 and needle in err and "Traceback" not in err


def _fit_of_each_channel(bundle_path: Path, data: Path, seed: int) -> np.ndarray:
    """(C, C): the Poisson loss, over every group of the data (as the trainer forms them), of channel k's
    predicted pattern against channel j's measured pattern; [k, j]."""
    model = load_bundle(bundle_path).model
    dataset = PtychoDataset(MemmapDatasetBridge(data), gridsize=2, K=7, nsamples=1, seed=seed)
    batch = dataset.get_batch(np.arange(len(dataset)))
    with torch.no_grad():
        predicted = model(batch["diffraction"], batch["coords_relative"]).pred_amplitude  # (B, C, N, N)
        measured = batch["diffraction"]
        channels = range(measured.shape[1])
        return np.array([[float(model.loss_of(predicted[:, k], measured[:, j])) for j in channels]
                         for k in channels])


def test_gridsize_2_training_fits_each_pattern_of_the_group(tmp_path: Path) -> None:
    """A short seeded gridsize-2 run (8 groups of 4 patterns, 2 batches per epoch, 60 steps, one thread,
    float32) must learn through the merge of the group's patches: its loss falls from about the flat
    object's (the network starts near |O| = 1) to clearly below it, and each measured pattern of a group is
    explained best by the prediction of its own channel.

    Measured on this seed: the share of the flat->best gap closed goes from -0.07 to 0.21 (+0.28); with the
    gradient of three of the four merged channels cut it rose by 0.13, and its channels mixed up; with one
    merged patch in every channel (the merge dropping channels) the loss fell as far, but every pattern was
    explained best by channel 0; with the merged output detached nothing trains (backward raises).
    """
    data = write_npz(tmp_path / "data.npz", simulate_dataset(8, nphotons=1e4, overlap=0.7, seed=0, N=16))
    config = _config(tmp_path, data=data, steps=60, batch_size=4, lr=1e-2, gridsize=2, val_fraction=0.0,
                     plateau_steps=0, precision="32", threads=1, lr_warmup=0)  # as measured: no warm-up
    result = train(config, progress=False)
    bundle = load_bundle(tmp_path / "run" / BUNDLE_NAME)
    assert bundle.config.data.gridsize == 2 and bundle.config.model.channels == 4
    first, last = result.history[0], result.history[-1]
    progress = (f"loss {first.train_loss:.4g} -> {last.train_loss:.4g}, "
                f"gap closed {first.gap_closed:.3f} -> {last.gap_closed:.3f}")
    assert last.train_loss < first.train_loss and last.gap_closed > first.gap_closed + 0.2, progress
    assert last.gap_closed > 0.05, progress  # below the flat object's loss: structure, not only brightness
    fit = _fit_of_each_channel(tmp_path / "run" / BUNDLE_NAME, data, config.seed)
    assert list(fit.argmin(axis=0)) == [0, 1, 2, 3], fit  # pattern j is explained best by channel j


# ----------------------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_during_epoch_2_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data.npz")
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "ptycho_torch.train", "--data", str(data), "--output-dir", str(out),
            "--epochs", "2", *TINY_FLAGS, "--debug-step-delay", "0.4"]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT_NAME).exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(1.0)  # two or three of epoch 2's four steps (0.4 s each) are done
        assert proc.poll() is None, "the run ended before it could be killed mid-epoch"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _checkpoint(out)["epoch"] == 1 and not (out / BUNDLE_NAME).exists()

    resume = subprocess.run([*argv[:-2], "--resume"], env=_env(), capture_output=True, text=True, timeout=300,
                            check=False)
    assert resume.returncode == 0, resume.stdout + resume.stderr
    assert "resuming from" in resume.stdout and "after epoch 1" in resume.stdout
    straight = subprocess.run([*argv[:6], str(tmp_path / "straight"), *argv[7:-2]], env=_env(),
                              capture_output=True, text=True, timeout=300, check=False)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    killed_hist = json.loads((out / "history.json").read_text())["epochs"]
    straight_hist = json.loads((tmp_path / "straight" / "history.json").read_text())["epochs"]
    np.testing.assert_allclose([h["train_loss"] for h in killed_hist], [h["train_loss"] for h in straight_hist],
                               rtol=1e-5)
    wk, ws = _weights(out), _weights(tmp_path / "straight")
    for name in ws:
        torch.testing.assert_close(wk[name], ws[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process_with_the_combined_batch(tmp_path: Path) -> None:
    """2 ranks x batch 8 see, step for step, the same 16 groups as 1 process x batch 16 (DistributedSampler
    deals one permutation round-robin), and DDP averages the gradients: the weights must agree."""
    data = tiny_dataset(tmp_path / "data.npz")
    # float32 on both sides: "auto" is bf16 on CPUs with bf16 units, whose rounding differs with the batch split
    flags = ["--data", str(data), "--epochs", "2", *TINY_FLAGS, "--precision", "32"]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
         "-m", "ptycho_torch.train", *flags, "--output-dir", str(tmp_path / "ddp")],
        env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    assert ddp.stdout.count("epoch 2/2") == 1  # printing on rank 0 only
    single = train(TrainConfig(data=str(data), output_dir=str(tmp_path / "single"),
                               **{**TINY, "batch_size": 16, "precision": "32"}), progress=False)
    bundle = load_bundle(tmp_path / "ddp" / BUNDLE_NAME)
    assert bundle.metadata["world_size"] == 2 and bundle.metadata["epochs"] == 2
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())["epochs"]
    np.testing.assert_allclose([h["train_loss"] for h in history], [r.train_loss for r in single.history],
                               rtol=1e-4)
    np.testing.assert_allclose([h["val_loss"] for h in history], [r.val_loss for r in single.history],
                               rtol=1e-4)
    ws = _weights(tmp_path / "single")
    steps, lr = history[-1]["step"], TINY["lr"]
    for name, value in bundle.model.state_dict().items():
        if name == "net.phase_head.bias":
            # a global phase leaves every diffraction intensity unchanged, so this bias's gradient is close to
            # zero and mostly summation-order noise, which Adam turns into moves of up to lr per step (on an
            # AMD EPYC, 2026-12-08: 5.2e-4 apart after 4 steps, where every other weight agreed within 1e-4)
            assert (value - ws[name]).abs().max().item() <= steps * lr, name
            continue
        # Adam turns summation-order noise in near-zero gradients into ~1e-5 moves; one step is lr = 3e-3
        torch.testing.assert_close(value, ws[name], rtol=1e-3, atol=2e-4)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        ["checkpoint.pt", "history.json", "loss_curve.png", BUNDLE_NAME, f"{BUNDLE_NAME}.sha256"])


# ----------------------------------------------------------------------------------------------- plateau


def test_steps_replace_epochs_and_a_run_ends_inside_an_epoch(tmp_path: Path) -> None:
    result = train(_config(tmp_path, steps=6), progress=False)  # 4 steps per epoch: 1.5 epochs
    assert [r.step for r in result.history] == [4, 6] and result.history[-1].epoch == 2
    state = _checkpoint(tmp_path / "run")
    assert state["global_step"] == 6 and state["batches_done"] == 2  # epoch 2 half done
    resumed = train(_config(tmp_path, steps=10), resume=True, progress=False)  # finishes epoch 2, then 3
    straight = train(_config(tmp_path, "straight", steps=10), progress=False)
    assert [r.step for r in resumed.history] == [4, 6, 8, 10]
    ws, wr = _weights(tmp_path / "straight"), _weights(tmp_path / "run")
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    assert straight.history[-1].train_loss == resumed.history[-1].train_loss


def test_a_run_stopped_inside_an_epoch_decides_restarts_at_the_same_steps_after_resume(tmp_path: Path) -> None:
    # decisions at whole epochs (4 steps) here; a stop at step 6 is no decision point, so the restart of an
    # attempt still on the plateau (plateau_steps 5) comes at step 8 in both runs, not at 6 in the stopped one
    plateau = {"plateau_steps": 5, "escape_gap": 0.99, "max_restarts": 1}
    straight = train(_config(tmp_path, "straight", steps=12, **plateau), progress=False)
    train(_config(tmp_path, "split", steps=6, **plateau), progress=False)
    assert not _checkpoint(tmp_path / "split")["restarts"]
    resumed = train(_config(tmp_path, "split", steps=12, **plateau), resume=True, progress=False)
    assert [r.at_step for r in straight.restarts] == [8] and resumed.restarts == straight.restarts
    ws, wr = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_history_json_is_strict_json_with_null_for_losses_never_measured(tmp_path: Path) -> None:
    train(_config(tmp_path, epochs=1, val_fraction=0.0), progress=False)
    text = (tmp_path / "run" / "history.json").read_text()
    document = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert document["epochs"][0]["val_loss"] is None and math.isfinite(document["epochs"][0]["train_loss"])


def test_a_run_still_on_the_plateau_restarts_from_a_new_seed(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # escape_gap 0.99: no run of 8 steps gets there, so every attempt is "on the plateau" after 4 steps
    config = _config(tmp_path, steps=8, plateau_steps=4, escape_gap=0.99, max_restarts=2)
    result = train(config, progress=False)
    printed = capsys.readouterr().out
    assert [r.attempt for r in result.restarts] == [0, 1] and [r.steps for r in result.restarts] == [4, 4]
    assert result.restarts[0].seed == 0 and result.restarts[1].seed not in (0, result.restarts[0].seed)
    assert all(r.gap_closed < 0.99 for r in result.restarts)
    assert "restart 1/2: still on the flat-object plateau after 4 steps" in printed
    assert "still on the flat-object plateau after 2 restarts; training on" in printed
    assert result.history[-1].attempt == 2 and result.history[-1].step == 16  # 4 + 4 + the final 8
    document = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["attempt"] for r in document["restarts"]] == [0, 1] and document["attempt"] == 2
    assert document["attempt_steps"] == 8 and document["steps"] == 16 and document["escaped_at_step"] is None
    bundle = load_bundle(tmp_path / "run" / BUNDLE_NAME)
    assert [r["attempt"] for r in bundle.metadata["run"]["restarts"]] == [0, 1]
    again = train(_config(tmp_path, "again", steps=8, plateau_steps=4, escape_gap=0.99, max_restarts=2),
                  progress=False)
    assert again.restarts == result.restarts  # restarts are as reproducible as the rest of a run


def test_the_rate_rises_over_the_warm_up_of_each_attempt_and_none_without(tmp_path: Path) -> None:
    lr = TINY["lr"]
    warm = train(_config(tmp_path, "warm", epochs=3, lr_warmup=8, lr_schedule="constant"), progress=False)
    assert [r.step for r in warm.history] == [4, 8, 12]  # 4 steps per epoch; lr as it was at the epoch's end
    assert [r.lr for r in warm.history] == pytest.approx([lr * 4 / 8, lr, lr])
    cold = train(_config(tmp_path, "cold", epochs=2, lr_warmup=0, lr_schedule="constant"), progress=False)
    assert [r.lr for r in cold.history] == pytest.approx([lr, lr])
    weights = _weights(tmp_path / "warm"), _weights(tmp_path / "cold")
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert TrainConfig(data="d", output_dir="o").lr_warmup == 50  # on by default


def test_the_warm_up_starts_again_with_each_restart(tmp_path: Path) -> None:
    # escape_gap 0.99: the first attempt is "on the plateau" after 4 steps and restarts, with a fresh optimizer
    result = train(_config(tmp_path, epochs=None, steps=8, lr_warmup=8, plateau_steps=4, escape_gap=0.99,
                           max_restarts=1, lr_schedule="constant"), progress=False)
    assert [r.at_step for r in result.restarts] == [4]
    assert [(r.step, r.attempt) for r in result.history] == [(4, 1), (8, 1), (12, 1)]  # recorded after it
    lr = TINY["lr"]
    # the new attempt's rate: its first step's (lr / 8) when recorded at the restart, then at its steps 4, 8
    assert [r.lr for r in result.history] == pytest.approx([lr / 8, lr * 4 / 8, lr])
