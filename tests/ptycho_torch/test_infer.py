"""Inference and stitching: the pixel frame, probe weighting, recon.npz contents, CLI errors."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptycho_torch import flat_field, physics
from ptycho_torch.bundle import BUNDLE_NAME, DataConfig, load_bundle, save_bundle
from ptycho_torch.cli import main
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.flat_field import FlatFieldEstimate
from ptycho_torch.infer import Stitcher, canvas_shape, model_stitch_weights, reconstruct, stitch_weights
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.model import ModelConfig, PtychoPINN
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.simulate import simulate_dataset, write_npz

N = 16


def _smooth_object(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amplitude = 0.5 + 0.5 * gaussian_filter(rng.random(shape), 3) / 0.5
    phase = gaussian_filter(rng.standard_normal(shape), 3) * 5
    rows, cols = np.indices(shape)
    phase += 0.02 * cols - 0.01 * rows  # not symmetric: a transposed or flipped frame shows
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def _gaussian_weights(n: int = N) -> torch.Tensor:
    yy, xx = np.mgrid[:n, :n] - n // 2
    return torch.tensor(np.exp(-(xx**2 + yy**2) / (2 * (n / 5) ** 2)), dtype=torch.float32)


def _stitch_truth_patches(obj: np.ndarray, centres: np.ndarray, threshold: float = 0.1
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Stitch patches cut from `obj` itself: a perfect network."""
    c = torch.tensor(centres, dtype=torch.float32)
    patches = physics.extract_patches(torch.from_numpy(obj), c, N)
    stitcher = Stitcher(obj.shape, _gaussian_weights())
    for start in range(0, len(c), 7):  # in chunks, as inference does
        stitcher.add(patches[start : start + 7], c[start : start + 7])
    record = stitcher.result(threshold)
    return record.object, record.coverage


def test_stitching_perfect_patches_at_integer_positions_gives_back_the_object() -> None:
    obj = _smooth_object((48, 56))
    xs, ys = np.meshgrid(np.arange(10, 47, 4), np.arange(10, 39, 4))  # x along columns (56), y along rows
    recon, coverage = _stitch_truth_patches(obj, np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64))
    assert coverage[24, 28] and not coverage[0, 0] and not coverage[47, 55]
    np.testing.assert_allclose(recon[coverage], obj[coverage], rtol=0, atol=1e-5)
    assert np.isnan(recon[~coverage]).all()


def test_stitching_at_sub_pixel_positions_stays_close_and_aligned() -> None:
    obj = _smooth_object((48, 56), seed=1)
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.arange(10, 47, 3.7), np.arange(10, 39, 3.3))
    centres = np.stack([xs.ravel(), ys.ravel()], 1) + rng.uniform(-0.5, 0.5, (xs.size, 2))
    recon, coverage = _stitch_truth_patches(obj, centres)
    error = np.abs(recon[coverage] - obj[coverage])
    assert np.median(error) < 0.02 and error.max() < 0.1  # bilinear resampling blurs a little, no more
    shifted = np.roll(obj, 1, axis=1)  # one pixel off would be far worse
    assert np.median(np.abs(recon[coverage] - shifted[coverage])) > 3 * np.median(error)


def test_probe_weighting_keeps_dark_patch_edges_from_dominating() -> None:
    """Two patches disagree; where only one is bright, the stitched value follows the bright one."""
    weights = _gaussian_weights()
    stitcher = Stitcher((16, 40), weights)
    ones = torch.ones(1, N, N, dtype=torch.complex64)
    stitcher.add(ones * 1.0, torch.tensor([[12.0, 8.0]]))
    stitcher.add(ones * 3.0, torch.tensor([[22.0, 8.0]]))
    recon = stitcher.result(0.01).object
    assert abs(recon[8, 12] - 1.0) < 0.2 and abs(recon[8, 22] - 3.0) < 0.2
    assert abs(recon[8, 17] - 2.0) < 1e-5  # half way: equal weights


def _bundle(tmp_path: Path, probe: np.ndarray, gridsize: int = 1, n: int = N) -> Path:
    torch.manual_seed(0)
    probe_t = torch.from_numpy(probe)
    model = PtychoPINN(ModelConfig(N=n, gridsize=gridsize, n_filters=4, depth=2), probe_t,
                       physics.intensity_scale(probe_t, 1e3))
    return save_bundle(tmp_path / BUNDLE_NAME, model, DataConfig(N=n, gridsize=gridsize, K=6), {"seed": 0})


@pytest.mark.parametrize("gridsize", [1, 2])
def test_infer_writes_one_complex_object_in_the_objectguess_frame(tmp_path: Path, gridsize: int,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_dataset(25, nphotons=1e3, overlap=0.7, seed=0, N=N)
    path = write_npz(tmp_path / "data.npz", data)
    bundle = _bundle(tmp_path, data.probeGuess, gridsize)
    out = tmp_path / "out"
    assert main(["infer", "--bundle", str(bundle), "--data", str(path), "--output-dir", str(out),
                 "--batch-size", "4"]) == 0
    assert "reconstructed 25 patterns" in capsys.readouterr().out
    with np.load(out / "recon.npz", allow_pickle=False) as recon:
        assert sorted(recon.files) == ["coverage", "object", "weight"]
        obj, coverage = recon["object"], recon["coverage"]
    assert obj.dtype == np.complex64 and obj.shape == data.objectGuess.shape
    assert coverage.dtype == np.bool_ and coverage.shape == obj.shape
    assert np.isnan(obj[~coverage]).all() and np.isfinite(obj[coverage]).all()
    rows, cols = np.rint(data.ycoords).astype(int), np.rint(data.xcoords).astype(int)
    assert coverage[rows, cols].all()  # every scan centre is covered ...
    assert not coverage[0, :].any() and not coverage[:, -1].any()  # ... the frame's margins are not
    for name in ("recon_amplitude.png", "recon_phase.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")


def test_canvas_without_objectguess_holds_every_patch(tmp_path: Path) -> None:
    data = simulate_dataset(9, nphotons=1e3, overlap=0.5, seed=0, N=N)
    arrays = {k: v for k, v in data.arrays().items() if k != "objectGuess"}
    np.savez(tmp_path / "noobj.npz", **arrays)
    bridge = MemmapDatasetBridge(tmp_path / "noobj.npz")
    height, width = canvas_shape(bridge, N)
    assert height >= data.ycoords.max() + N // 2 and width >= data.xcoords.max() + N // 2
    assert (height, width) == physics.frame_shape(np.stack([data.xcoords, data.ycoords], axis=1), N)
    bundle = _bundle(tmp_path, data.probeGuess)
    assert main(["infer", "--bundle", str(bundle), "--data", str(tmp_path / "noobj.npz"), "--output-dir",
                 str(tmp_path / "o")]) == 0
    with np.load(tmp_path / "o" / "recon.npz") as recon:
        assert recon["object"].shape == (height, width)


def test_stitch_weights_are_the_probe_intensity_with_peak_one() -> None:
    probe = torch.tensor(np.random.default_rng(0).standard_normal((2, N, N)), dtype=torch.complex64)
    weights = stitch_weights(probe)
    expected = (probe.abs() ** 2).sum(0)
    torch.testing.assert_close(weights, expected / expected.max())


def test_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_dataset(9, nphotons=1e3, overlap=0.7, seed=0, N=32)
    path = write_npz(tmp_path / "d32.npz", data)
    small = simulate_dataset(9, nphotons=1e3, overlap=0.7, seed=0, N=N)
    bundle = _bundle(tmp_path, small.probeGuess)
    base = ["infer", "--bundle", str(bundle), "--output-dir", str(tmp_path / "o")]
    assert main([*base, "--data", str(path)]) == 1
    assert "trained on 16x16" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "missing.npz")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main([*base, "--data", str(path), "--coverage-threshold", "0"]) == 1

    with zipfile.ZipFile(bundle, "a") as zf:  # tampering: an extra member changes the file's SHA256
        zf.writestr("extra.txt", "x")
    capsys.readouterr()
    assert main([*base, "--data", str(write_npz(tmp_path / "d16.npz", small))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ptycho-torch infer: error:") and "sidecar" in err and "Traceback" not in err


def test_central_window_stitching_averages_only_each_patchs_central_window() -> None:
    weights = stitch_weights(torch.ones(1, N, N, dtype=torch.complex64), window=8)  # rows, columns 4..11
    assert torch.equal(weights[4:12, 4:12], torch.ones(8, 8)) and weights.sum() == 64
    stitcher = Stitcher((16, 40), weights, interpolation=physics.Interpolation.NEAREST)
    ones = torch.ones(1, N, N, dtype=torch.complex64)
    stitcher.add(ones * 1.0, torch.tensor([[12.0, 8.0]]))  # central window: columns 8..15
    stitcher.add(ones * 3.0, torch.tensor([[18.0, 8.0]]))  # columns 14..21
    record = stitcher.result(0.5)
    assert record.object[8, 10] == 1.0 and record.object[8, 20] == 3.0  # one window each: its value alone
    assert record.object[8, 14] == 2.0 and record.object[8, 15] == 2.0  # both: their plain mean
    assert not record.coverage[:, :8].any() and not record.coverage[:, 22:].any()  # no window: not covered
    assert not record.coverage[:4].any()  # the patches' dark periphery never counts


def test_infer_stitches_a_supported_model_within_its_support_by_default(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate_dataset(25, nphotons=1e3, overlap=0.7, seed=0, N=N)
    path = write_npz(tmp_path / "data.npz", data)
    torch.manual_seed(0)
    probe = torch.from_numpy(data.probeGuess)
    model = PtychoPINN(ModelConfig(N=N, n_filters=4, depth=2, support=6), probe, physics.intensity_scale(probe, 1e3))
    bundle = save_bundle(tmp_path / BUNDLE_NAME, model, DataConfig(N=N), {"seed": 0})
    inside = torch.zeros(N, N, dtype=torch.bool)
    inside[5:11, 5:11] = True  # the 6 x 6 support
    weights = model_stitch_weights(model, None)  # by default: the probe's intensity within the support
    torch.testing.assert_close(weights, stitch_weights(model.probe) * inside)
    assert torch.equal(model_stitch_weights(model, 0), stitch_weights(model.probe))
    covered = {}
    for name, extra in (("support", []), ("whole", ["--stitch-window", "0"]), ("two", ["--stitch-window", "2"])):
        out = tmp_path / name
        assert main(["infer", "--bundle", str(bundle), "--data", str(path), "--output-dir", str(out), *extra]) == 0
        with np.load(out / "recon.npz", allow_pickle=False) as recon:
            covered[name] = recon["coverage"]
            assert np.isfinite(recon["object"][covered[name]]).all()
    assert covered["two"].sum() < covered["support"].sum() < covered["whole"].sum()
    # by default each patch counts within its 6 x 6 support only: no pixel beyond 3 of a scan position
    rows, cols = np.nonzero(covered["support"])
    nearest = np.min(np.maximum(np.abs(rows[:, None] - np.rint(data.ycoords)[None]),
                                np.abs(cols[:, None] - np.rint(data.xcoords)[None])), axis=1)
    assert nearest.max() <= 3
    capsys.readouterr()
    assert main(["infer", "--bundle", str(bundle), "--data", str(path), "--output-dir", str(tmp_path / "x"),
                 "--stitch-window", "17"]) == 1
    assert "--stitch-window must be a window side from 1 to the patch's 16 pixels" in capsys.readouterr().err


@pytest.mark.parametrize("gridsize", [1, 2])
def test_infer_divides_out_the_flat_field_of_the_patches_it_stitches(tmp_path: Path, gridsize: int,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The default result is the plain stitching of the same patches, each multiplied by the flat-field
    correction that FlatFieldEstimate measures from them (at most flat_field.SAMPLE_GROUPS groups of them,
    spread over the scan); --no-flat-field stitches them as they are."""
    data = simulate_dataset(25, nphotons=1e3, overlap=0.7, seed=0, N=N)
    path = write_npz(tmp_path / "data.npz", data)
    bundle = load_bundle(_bundle(tmp_path, data.probeGuess, gridsize))
    bridge = MemmapDatasetBridge(path)
    plain = reconstruct(bundle, bridge, batch_size=4, flat_field=False)
    flat = reconstruct(bundle, bridge, batch_size=4)
    assert plain.flat_field is None and flat.flat_field is not None
    dataset = PtychoDataset(bridge, gridsize=gridsize, K=6, nsamples=1, seed=bundle.config.data.group_seed)
    batch = dataset.get_batch(np.arange(len(dataset)))
    with torch.no_grad():
        patches = bundle.model.predict_object_patches(batch["diffraction"], batch["coords_relative"],
                                                      batch["coords_global"]).reshape(-1, N, N)
    positions = batch["coords_global"].reshape(-1, 2)
    weights = model_stitch_weights(bundle.model, None)
    estimate = FlatFieldEstimate(weights)
    estimate.add(patches)
    expected = estimate.result()
    assert expected is not None and flat.flat_field.n_patches == expected.n_patches == 25 * gridsize**2
    torch.testing.assert_close(flat.flat_field.correction, expected.correction, rtol=1e-4, atol=1e-5)
    for patches_stitched, record in ((patches, plain), (patches * expected.correction, flat)):
        stitcher = Stitcher(tuple(plain.object.shape), weights, interpolation=physics.Interpolation.NEAREST)
        stitcher.add(patches_stitched, positions)
        np.testing.assert_allclose(record.object, stitcher.result(COVERAGE_THRESHOLD).object, rtol=1e-4,
                                   atol=1e-5)
    # an untrained network's patches are nearly flat; still, the correction shows well above the tolerance
    assert np.abs(flat.object[flat.coverage] - plain.object[plain.coverage]).max() > 1e-4

    capsys.readouterr()
    base = ["infer", "--bundle", str(bundle.path), "--data", str(path), "--output-dir"]
    assert main([*base, str(tmp_path / "on")]) == 0
    assert f"flat field from {25 * gridsize**2} patches" in capsys.readouterr().out
    assert main([*base, str(tmp_path / "off"), "--no-flat-field"]) == 0
    assert "flat field" not in capsys.readouterr().out
    few = write_npz(tmp_path / "few.npz", simulate_dataset(4, nphotons=1e3, overlap=0.7, seed=0, N=N))
    if gridsize == 1:  # 4 patterns: too few to measure one, said, and the patches stitched as they are
        assert main(["infer", "--bundle", str(bundle.path), "--data", str(few), "--output-dir",
                     str(tmp_path / "few")]) == 0
        assert "no flat field: 4 patterns are too few" in capsys.readouterr().out

    monkeypatch.setattr(flat_field, "SAMPLE_GROUPS", 10)  # measured on 10 groups spread over the scan
    sampled = reconstruct(bundle, bridge, batch_size=4)
    groups = flat_field.sample_groups(len(dataset))
    assert len(groups) == 10 and groups[0] == 0 and groups[-1] == len(dataset) - 1
    estimate = FlatFieldEstimate(weights)
    estimate.add(patches.reshape(len(dataset), gridsize**2, N, N)[torch.as_tensor(groups)].reshape(-1, N, N))
    assert sampled.flat_field is not None and sampled.flat_field.n_patches == 10 * gridsize**2
    torch.testing.assert_close(sampled.flat_field.correction, estimate.result().correction, rtol=1e-4, atol=1e-5)
