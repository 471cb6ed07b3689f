"""Training that stops itself: the weights of the lowest validation loss are the ones saved, a run stops once
its validation loss has not improved for --patience steps, and a run given no length is capped."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ptycho_torch.bundle import BUNDLE_NAME, load_bundle
from ptycho_torch.cli import main
from ptycho_torch.device import DistContext, Precision
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.train.data import held_out_sets
from ptycho_torch.train.loop import train
from ptycho_torch.train.validation import validation_loss
from tests.ptycho_torch.train.test_loop import TINY_FLAGS, _config

NOISY = {"lr": 3e-2, "precision": "32", "threads": 1, "plateau_steps": 0}  # a loss that goes up and down


def _history(output_dir: Path) -> dict:
    return json.loads((output_dir / "history.json").read_text())


def _saved_val_loss(output_dir: Path, data: Path) -> float:
    """The validation loss of the saved bundle's model on the run's own validation groups."""
    model = load_bundle(output_dir / BUNDLE_NAME).model
    _, val = held_out_sets(MemmapDatasetBridge(data), gridsize=1, K=7, val_fraction=0.1, seed=0)
    return validation_loss(model, val, 8, DistContext(), torch.device("cpu"), Precision.FP32)


@pytest.mark.parametrize("keep_best", [True, False])
def test_the_saved_model_has_the_weights_of_the_lowest_validation_loss(tmp_path: Path, keep_best: bool) -> None:
    config = _config(tmp_path, steps=48, patience=0, keep_best=keep_best, **NOISY)
    train(config, progress=False)
    document = _history(tmp_path / "run")
    losses = [epoch["val_loss"] for epoch in document["epochs"]]
    best = int(np.argmin(losses))
    assert losses[-1] > losses[best]  # the run ended past its minimum: keeping the best is not the last
    assert document["best_val_loss"] == pytest.approx(losses[best], rel=1e-12)
    assert document["best_val_step"] == document["epochs"][best]["step"]
    assert document["keep_best"] is keep_best and document["stopped_early"] is False
    saved = _saved_val_loss(tmp_path / "run", Path(config.data))
    assert saved == pytest.approx(losses[best] if keep_best else losses[-1], rel=1e-5)
    assert load_bundle(tmp_path / "run" / BUNDLE_NAME).metadata["weights"] == (
        "lowest validation loss" if keep_best else "last")


def test_a_run_stops_once_its_validation_loss_has_not_improved_for_patience_steps(tmp_path: Path) -> None:
    patience = 8  # two epochs of 4 steps
    result = train(_config(tmp_path, steps=400, patience=patience, **NOISY), progress=False)
    document = _history(tmp_path / "run")
    steps = [epoch["step"] for epoch in document["epochs"]]
    losses = [epoch["val_loss"] for epoch in document["epochs"]]
    assert document["stopped_early"] is True and steps[-1] < 400 and result.history[-1].step == steps[-1]
    best_step, lowest = 0, math.inf
    for number, (step, loss) in enumerate(zip(steps, losses, strict=True)):
        if loss < lowest:
            best_step, lowest = step, loss
        stale = step - best_step >= patience
        assert stale == (number == len(steps) - 1)  # it stops at the first epoch the minimum is that old
    assert document["best_val_step"] == best_step and document["patience"] == patience
    assert _saved_val_loss(tmp_path / "run", Path(_config(tmp_path).data)) == pytest.approx(lowest, rel=1e-5)


def test_a_run_given_no_length_runs_to_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(_config(tmp_path).data)
    code = main(["train", "--data", str(data), "--output-dir", str(tmp_path / "o"), *TINY_FLAGS,
                 "--max-steps", "10", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    document = _history(tmp_path / "o")
    assert document["steps"] == 10 and document["planned_steps"] == 10
    assert document["patience"] == 1000 and document["keep_best"] is True
