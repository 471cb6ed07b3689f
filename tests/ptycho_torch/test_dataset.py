"""PtychoDataset: sample fields, batched gathers, DataLoader workers, pickling without the array."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ptycho_torch.dataset import PtychoDataset, make_loader
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from tests.ptycho_torch.npz_samples import dataset_arrays, write_npz


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return dataset_arrays(40, 16, seed=5)


@pytest.fixture
def bridge(tmp_path: Path, arrays: dict[str, np.ndarray]) -> MemmapDatasetBridge:
    return MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))


def expected_sample(ds: PtychoDataset, arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    idx = ds.groups[i]
    glob = np.stack([arrays["xcoords"][idx], arrays["ycoords"][idx]], axis=1)
    centre = glob.mean(axis=0, keepdims=True)
    return {"diffraction": arrays["diffraction"][idx], "coords_global": glob, "coords_offsets": centre,
            "coords_relative": glob - centre, "indices": idx}


def assert_sample(sample: dict[str, torch.Tensor], want: dict[str, np.ndarray]) -> None:
    assert set(sample) == set(want)
    for key, value in want.items():
        got = sample[key]
        assert isinstance(got, torch.Tensor)
        if key == "indices":
            assert got.dtype == torch.int64
            np.testing.assert_array_equal(got.numpy(), value)
        else:
            assert got.dtype == torch.float32, key
            np.testing.assert_allclose(got.numpy(), value.astype(np.float32), rtol=1e-6, atol=1e-5)


class TestSamples:
    @pytest.mark.parametrize("gridsize", [1, 2])
    def test_fields_shapes_and_values(self, bridge: MemmapDatasetBridge, arrays: dict[str, np.ndarray],
                                      gridsize: int) -> None:
        ds = PtychoDataset(bridge, gridsize=gridsize)
        c = gridsize**2
        assert len(ds) == 40 and ds.channels == c
        sample = ds[7]
        assert sample["diffraction"].shape == (c, 16, 16)
        assert sample["coords_relative"].shape == (c, 2) and sample["coords_global"].shape == (c, 2)
        assert sample["coords_offsets"].shape == (1, 2) and sample["indices"].shape == (c,)
        assert_sample(sample, expected_sample(ds, arrays, 7))

    def test_batch_equals_stacked_samples(self, bridge: MemmapDatasetBridge) -> None:
        ds = PtychoDataset(bridge, gridsize=2, nsamples=2, seed=1)
        rows = [5, 0, 33, 5, 79]
        batch = ds[rows]
        assert batch["diffraction"].shape == (5, 4, 16, 16)
        for j, i in enumerate(rows):
            for key in batch:
                torch.testing.assert_close(batch[key][j], ds[i][key])
        listed = ds.__getitems__(rows)
        assert len(listed) == 5
        for j, i in enumerate(rows):
            for key in batch:
                torch.testing.assert_close(listed[j][key], ds[i][key])

    def test_grouping_options_reach_the_groups(self, bridge: MemmapDatasetBridge) -> None:
        a = PtychoDataset(bridge, gridsize=2, K=5, nsamples=3, seed=2)
        assert len(a) == 120
        b = PtychoDataset(bridge, gridsize=2, K=5, nsamples=3, seed=2)
        np.testing.assert_array_equal(a.groups, b.groups)


class TestLoading:
    def test_dataloader_workers_match_direct_indexing(self, bridge: MemmapDatasetBridge) -> None:
        ds = PtychoDataset(bridge, gridsize=2)
        loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=2, pin_memory=False)
        seen = 0
        for start, batch in zip(range(0, len(ds), 8), loader, strict=True):
            rows = list(range(start, min(start + 8, len(ds))))
            direct = ds[rows]
            for key in direct:
                torch.testing.assert_close(batch[key], direct[key])
            seen += len(rows)
        assert seen == len(ds)

    def test_make_loader_batches_cover_the_epoch_once(self, bridge: MemmapDatasetBridge) -> None:
        ds = PtychoDataset(bridge, gridsize=1)
        loader = make_loader(ds, batch_size=16, shuffle=True, num_workers=2, pin_memory=False, seed=3)
        indices = []
        for batch in loader:
            assert batch["diffraction"].shape[1:] == (1, 16, 16)
            for j, i in enumerate(batch["indices"][:, 0].tolist()):
                torch.testing.assert_close(batch["diffraction"][j], ds[i]["diffraction"])
            rows = batch["indices"][:, 0].tolist()
            assert rows == sorted(rows), "make_loader reads each batch front to back"
            indices += rows
        assert sorted(indices) == list(range(40))
        again = [i for b in make_loader(ds, batch_size=16, seed=3) for i in b["indices"][:, 0].tolist()]
        assert again == indices, "the same seed gives the same order"

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="pin_memory needs an accelerator")
    def test_pin_memory(self, bridge: MemmapDatasetBridge) -> None:  # pragma: no cover - GPU machines
        batch = next(iter(make_loader(PtychoDataset(bridge), batch_size=4, pin_memory=True)))
        assert batch["diffraction"].is_pinned()

    def test_pickled_dataset_does_not_carry_the_array(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(200, 32)
        ds = PtychoDataset(MemmapDatasetBridge(write_npz(tmp_path / "big.npz", arrays)), gridsize=2)
        _ = ds[0]
        blob = pickle.dumps(ds)
        assert len(blob) < arrays["diffraction"].nbytes / 10
        clone = pickle.loads(blob)
        for key, value in ds[3].items():
            torch.testing.assert_close(clone[3][key], value)

    @pytest.mark.slow
    def test_spawned_workers_reopen_the_map(self, bridge: MemmapDatasetBridge) -> None:
        ds = PtychoDataset(bridge, gridsize=2)
        loader = make_loader(ds, batch_size=20, shuffle=False, num_workers=2, multiprocessing_context="spawn")
        batches = list(loader)
        got = torch.cat([b["diffraction"] for b in batches])
        torch.testing.assert_close(got, ds[list(range(40))]["diffraction"])
