"""The Run: one step counter, the others derived from it; a checkpoint whose position disagrees is refused."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ptycho_torch.errors import TrainError
from ptycho_torch.model import ModelConfig, PtychoPINN
from ptycho_torch.simulate import simulate_dataset, write_npz
from ptycho_torch.train.checkpoint import CHECKPOINT_NAME
from ptycho_torch.train.config import RestartRecord, TrainConfig
from ptycho_torch.train.loop import train
from ptycho_torch.train.progress import PlateauWatch, ReferenceLosses
from ptycho_torch.train.run import Run, attempt_seed, new_optimizer

TINY = {"batch_size": 8, "n_filters": 4, "depth": 2, "lr": 3e-3}


def _run(per_epoch: int = 4, total: int = 10) -> Run:
    config = TrainConfig(data="unused.npz", output_dir="unused", **TINY)
    probe = torch.ones(16, 16, dtype=torch.complex64)
    model = PtychoPINN(ModelConfig(N=16, n_filters=4, depth=2), probe, 1.0)
    references = ReferenceLosses(flat=1.0, best=0.0)
    return Run(config=config, model=model, optimizer=new_optimizer(model, config),
               scaler=torch.amp.GradScaler("cpu", enabled=False), watch=PlateauWatch(config, references),
               references=references, fresh_model=lambda: model, per_epoch=per_epoch, total=total)


def test_epoch_batches_and_attempt_follow_from_the_step() -> None:
    run = _run()
    assert (run.epoch, run.batches_done, run.attempt, run.attempt_step, run.finished) == (0, 0, 0, 0, False)
    run.step = 6  # inside epoch 2
    assert (run.epoch, run.batches_done, run.planned_epochs) == (2, 2, 3)
    run.step = 8  # epoch 2 finished
    assert (run.epoch, run.batches_done) == (2, 0)
    run.restarts.append(RestartRecord(attempt=0, seed=0, steps=5, gap_closed=0.0, at_step=5))
    assert (run.attempt, run.attempt_step, run.finished) == (1, 3, False)
    run.step = 15
    assert run.finished and run.attempt_step == 10


def test_a_restart_starts_the_next_attempt_at_the_current_step_with_its_own_seed() -> None:
    run = _run()
    run.step = 7
    before = run.optimizer
    with torch.random.fork_rng():  # a restart seeds torch's global RNG
        run.restart()
    assert run.restarts == [RestartRecord(attempt=0, seed=0, steps=7, gap_closed=run.restarts[0].gap_closed,
                                          at_step=7)]
    assert run.attempt == 1 and run.attempt_step == 0 and run.optimizer is not before
    assert attempt_seed(0, 1) not in (0, attempt_seed(0, 2)) and attempt_seed(5, 0) == 5


def test_resume_refuses_a_checkpoint_whose_position_does_not_follow_from_its_step(tmp_path: Path) -> None:
    data = write_npz(tmp_path / "data.npz", simulate_dataset(36, nphotons=1e3, overlap=0.7, seed=0, N=16))
    config = TrainConfig(data=str(data), output_dir=str(tmp_path / "run"), steps=6, **TINY)
    train(config, progress=False)
    path = tmp_path / "run" / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    assert (state["global_step"], state["epoch"], state["batches_done"]) == (6, 2, 2)
    state["batches_done"] = 3
    torch.save(state, path)
    with pytest.raises(TrainError, match="does not follow from its step 6 with 4 batches per epoch"):
        train(TrainConfig(data=str(data), output_dir=str(tmp_path / "run"), steps=10, **TINY), resume=True,
              progress=False)
