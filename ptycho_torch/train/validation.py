"""The validation loss: the trainer's loss over the held-out groups, without gradients."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist

from ptycho_torch.device import DistContext, Precision, autocast
from ptycho_torch.model import PtychoPINN
from ptycho_torch.train.data import GroupRows, row_batches


@torch.no_grad()
def validation_loss(model: PtychoPINN, subset: GroupRows, batch_size: int, ctx: DistContext,
                    device: torch.device, precision: Precision) -> float:
    """Mean loss over this split's groups, each rank taking every world_size-th batch; NaN if empty."""
    model.eval()
    rows = np.arange(len(subset))[ctx.rank :: ctx.world_size]
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of loss * groups, groups)
    for positions in row_batches(rows, batch_size):
        batch = subset[positions]
        diffraction = batch["diffraction"].to(device, non_blocking=True)
        coords = batch["coords_relative"].to(device, non_blocking=True)
        positions = batch["coords_global"].to(device, non_blocking=True)
        with autocast(device, precision):
            loss = model.loss(model(diffraction, coords, positions), diffraction)
        totals[0] += loss.double() * len(positions)
        totals[1] += len(positions)
    if ctx.distributed:
        dist.all_reduce(totals)
    model.train()
    return float(totals[0] / totals[1]) if totals[1] > 0 else math.nan
