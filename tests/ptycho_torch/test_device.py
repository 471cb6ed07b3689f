"""Device choices: CPU threads (auto, explicit, restored), precision auto, the oversubscription note."""
from __future__ import annotations

import pytest
import torch

from ptycho_torch import device as device_module
from ptycho_torch.device import (
    MAX_AUTO_THREADS,
    DeviceError,
    DistContext,
    Precision,
    oversubscription_note,
    resolve_precision,
    resolve_threads,
    torch_threads,
)


def test_auto_threads_are_the_usable_cores_shared_by_the_local_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module, "usable_cores", lambda: 8)
    with torch_threads(8):
        assert resolve_threads(0) == 8
        assert resolve_threads(0, DistContext(rank=0, world_size=2), local_world_size=2) == 4
        assert resolve_threads(3) == 3  # explicit wins
    with torch_threads(2):  # never more than torch's own setting (OMP_NUM_THREADS, a test worker's 1 ...)
        assert resolve_threads(0) == 2
    monkeypatch.setattr(device_module, "usable_cores", lambda: 64)
    with torch_threads(64):
        assert resolve_threads(0) == MAX_AUTO_THREADS
    monkeypatch.setattr(device_module, "usable_cores", lambda: 1)
    assert resolve_threads(0, DistContext(rank=1, world_size=4), local_world_size=4) == 1
    with pytest.raises(DeviceError, match="--threads must be >= 0"):
        resolve_threads(-1)


def test_torch_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1) as count:
        assert count == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_note_when_other_work_leaves_fewer_free_cores_than_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(device_module, "load_average", lambda: 5.0)
    note = oversubscription_note(2)
    assert note is not None and "load average 5.0 on 2 cores" in note and "--threads 1" in note
    assert oversubscription_note(1) is None
    monkeypatch.setattr(device_module, "load_average", lambda: 0.2)
    assert oversubscription_note(2) is None


def test_auto_precision_is_bf16_on_cpus_with_bf16_units_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    assert resolve_precision("auto", cpu) is Precision.BF16
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: False)
    assert resolve_precision("auto", cpu) is Precision.FP32
    assert resolve_precision("bf16", cpu) is Precision.BF16 and resolve_precision("32", cpu) is Precision.FP32
    with pytest.raises(DeviceError, match="unknown precision"):
        resolve_precision("fp8", cpu)
