"""The PtychoPINN trainer: `ptycho-torch train`, `python -m ptycho_torch.train`, and under torchrun.

    torchrun --nproc_per_node=K -m ptycho_torch.train --data D.npz --output-dir O [flags of `ptycho-torch train`]

One readable loop (loop.py, nanoGPT style): DDP when torchrun set RANK, side effects (files, printing) on
rank 0 only, bf16 autocast on CUDA, gradient clipping, a checkpoint every epoch, resume restoring
everything. The run is one object (run.py: model, optimizer, scaler, plateau watch, and one step counter
from which the epoch, the attempt and their positions follow) and loop.train_epoch one epoch of it.

A run lasts --steps optimizer steps (or --epochs epochs) with --threads torch threads
(device.resolve_threads). Its progress is measured against a flat object's loss on the training data;
an attempt still on that plateau after --plateau-steps restarts from a new seed, and the learning rate is
halved when progress stalls after the escape (progress.py).

Data (data.py): the NPZ is opened through MemmapDatasetBridge and PtychoDataset (patterns are gathered per
batch from the memory map, never copied whole). Groups are split into train / validation by a seeded
permutation. Batches come from a DistributedSampler (one replica when not distributed) whose order depends
only on (seed, epoch), so a resumed run continues with exactly the batches the interrupted one would have seen.

Outputs in --output-dir (rank 0): checkpoint.pt (checkpoint.py: the latest epoch, loadable with
weights_only=True), history.json (epochs, restarts, threads, reference losses) and loss_curve.png
(outputs.py), wts.h5.zip + wts.h5.zip.sha256 (bundle.py).

Importing this package does not import torch (config.py is torch-free, so the CLI reads TrainConfig's
defaults cheaply); the names of the torch modules below are loaded on first use.
"""
from __future__ import annotations

from typing import Any

from ptycho_torch.errors import TrainError as TrainError
from ptycho_torch.errors import TrainingDivergedError as TrainingDivergedError
from ptycho_torch.train.config import EpochRecord as EpochRecord
from ptycho_torch.train.config import LrSchedule as LrSchedule
from ptycho_torch.train.config import RestartRecord as RestartRecord
from ptycho_torch.train.config import TrainConfig as TrainConfig
from ptycho_torch.train.config import TrainResult as TrainResult

_FROM_DATA = ("COUNTS_CHUNK", "GroupRows", "held_out_sets", "make_train_loader", "mean_total_counts", "split_groups",
              "split_positions")
_FROM_CHECKPOINT = ("CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint")
_FROM_OUTPUTS = ("CURVE_NAME", "HISTORY_NAME", "write_history", "write_loss_curve")
_FROM_LOOP = ("LossModule", "build_model", "train", "train_command")
_FROM_PROGRESS = ("ReferenceLosses", "PlateauWatch", "reference_losses")
_FROM_VALIDATION = ("validation_loss",)


def __getattr__(name: str) -> Any:
    """The torch-backed names, imported when first asked for (torch takes seconds to import)."""
    if name in _FROM_DATA:
        from ptycho_torch.train import data as module
    elif name in _FROM_CHECKPOINT:
        from ptycho_torch.train import checkpoint as module
    elif name in _FROM_OUTPUTS:
        from ptycho_torch.train import outputs as module
    elif name in _FROM_LOOP:
        from ptycho_torch.train import loop as module
    elif name in _FROM_PROGRESS:
        from ptycho_torch.train import progress as module
    elif name in _FROM_VALIDATION:
        from ptycho_torch.train import validation as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
