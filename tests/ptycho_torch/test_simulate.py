"""Synthetic data: object texture, probe, scan geometry, forward model and dose, NPZ output."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.cli import main
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.simulate import (
    SimulationError,
    forward_amplitude,
    make_object,
    make_probe,
    read_probe,
    scan_positions,
    simulate_dataset,
    split_by_region,
    write_npz,
)


def high_frequency_power_fraction(img: np.ndarray, cutoff: float = 0.25) -> float:
    """Fraction of the (mean-removed) power at spatial frequencies above `cutoff` cycles/pixel."""
    spec = np.abs(np.fft.fft2(img - img.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(img.shape[0]), np.fft.fftfreq(img.shape[1]), indexing="ij")
    return float(spec[np.hypot(fy, fx) > cutoff].sum() / spec.sum())


def autocorrelation(img: np.ndarray, lag: int) -> float:
    z = img - img.mean()
    return float((z[:, lag:] * z[:, :-lag]).mean() / z.var())


class TestObject:
    def test_deterministic_per_seed_and_seed_matters(self) -> None:
        a = make_object((96, 80), seed=1)
        assert a.shape == (96, 80) and a.dtype == np.complex64
        np.testing.assert_array_equal(a, make_object((96, 80), seed=1))
        assert not np.allclose(a, make_object((96, 80), seed=2))

    def test_amplitude_and_phase_ranges(self) -> None:
        obj = make_object(128, seed=0)
        amp, phase = np.abs(obj), np.angle(obj)
        assert 0.29 <= amp.min() and amp.max() <= 1.001 and amp.max() - amp.min() > 0.5
        assert -1.001 <= phase.min() and phase.max() <= 1.001 and phase.max() - phase.min() > 1.5

    @pytest.mark.parametrize("part", ["amplitude", "phase"])
    def test_features_are_a_few_pixels_not_pixel_noise(self, part: str) -> None:
        obj = make_object(256, seed=3)
        img = np.abs(obj) if part == "amplitude" else np.angle(obj)
        assert high_frequency_power_fraction(img) < 0.2, "dominated by pixel-scale frequencies"
        assert autocorrelation(img, 1) > 0.6, "neighbouring pixels must be correlated"
        assert autocorrelation(img, 3) > 0.3, "features span several pixels"
        assert abs(autocorrelation(img, 20)) < 0.15, "features are not one large blob"
        noise = np.random.default_rng(0).random((256, 256))
        assert high_frequency_power_fraction(noise) > 0.7  # the measure does see pixel noise

    def test_sharp_edges_exist(self) -> None:
        amp = np.abs(make_object(256, seed=4))
        jumps = np.abs(np.diff(amp, axis=1))
        assert (jumps > 0.2).mean() > 0.01, "cell boundaries give some sharp steps"


class TestProbe:
    def test_focused_probe_is_compact_and_does_not_wrap(self) -> None:
        probe = make_probe(64)
        assert probe.shape == (64, 64) and probe.dtype == np.complex64
        assert np.abs(probe).max() == pytest.approx(1.0)
        intensity = np.abs(probe) ** 2 / (np.abs(probe) ** 2).sum()
        yy, xx = np.mgrid[:64, :64] - 32
        assert intensity[np.hypot(yy, xx) <= 16].sum() > 0.9
        assert intensity[(np.abs(yy) >= 28) | (np.abs(xx) >= 28)].sum() < 0.005
        assert np.ptp(np.angle(probe[np.abs(probe) > 0.3])) > 0.5, "defocus gives a curved phase"
        # SIM-001, measured on the plain defocused aperture (radius N/8, 5 rad): a hard edge wraps, a soft one not
        plain = {"aperture_radius_px": 8.0, "defocus_rad": 5.0, "central_stop": 0.0, "coma_rad": 0.0}
        hard = np.abs(make_probe(64, edge_px=0, **plain)) ** 2
        hard /= hard.sum()
        assert hard[(np.abs(yy) >= 28) | (np.abs(xx) >= 28)].sum() > 0.01, "SIM-001: a hard edge wraps"
        soft = np.abs(make_probe(64, **plain)) ** 2
        assert soft[(np.abs(yy) >= 28) | (np.abs(xx) >= 28)].sum() / soft.sum() < 0.001

    def test_default_probe_is_fly64_like_a_spot_in_a_ring_and_not_centre_symmetric(self) -> None:
        probe = make_probe(64)
        amplitude = np.abs(probe)
        radial = [amplitude[np.round(np.hypot(*(np.mgrid[:64, :64] - 32))) == r].mean() for r in range(20)]
        ring = int(np.argmax(radial[4:])) + 4
        dip = min(radial[:ring])
        assert radial[0] > 1.5 * dip and radial[ring] > 1.5 * dip, "a bright centre and a ring around a dark gap"
        assert 6 <= ring <= 16, "the ring is about 3N/8 across"
        # a dense scan (spacing 0.3 N) lights every pixel between the positions at >= COVERAGE_THRESHOLD
        spacing = 0.3 * 64
        grid = torch.tensor([(64 + i * spacing, 64 + j * spacing) for i in range(6) for j in range(6)])
        lit = physics.illumination(torch.from_numpy(probe), grid.float(), (256, 256)).numpy()
        inner = lit[int(64 + spacing) : int(64 + 4 * spacing), int(64 + spacing) : int(64 + 4 * spacing)]
        assert inner.min() >= COVERAGE_THRESHOLD
        flipped = np.roll(probe[::-1, ::-1], 1, axis=(0, 1))  # P(-r) on the fftshift grid
        assert np.abs(flipped - probe).max() > 0.3, "SIM-003: P(-r) != P(r)"
        symmetric = make_probe(64, coma_rad=0.0)
        assert np.abs(np.roll(symmetric[::-1, ::-1], 1, axis=(0, 1)) - symmetric).max() < 1e-5
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(probe))) ** 2
        k = np.hypot(*(np.mgrid[:64, :64] - 32))
        assert spectrum[k > 16].sum() > 0.5 * spectrum.sum(), "its far field fills most of the detector"
        assert spectrum[k < 6].sum() < 0.02 * spectrum.sum(), "with a dark centre (the zone plate's stop)"

    def test_other_sizes(self) -> None:
        assert make_probe(32).shape == (32, 32)
        intensity = np.abs(make_probe(32)) ** 2
        yy, xx = np.mgrid[:32, :32] - 16
        assert intensity[np.hypot(yy, xx) <= 10].sum() > 0.9 * intensity.sum()  # scaled with N


class TestProbeFile:
    def test_a_probe_only_file_is_read_without_the_dataset_contract(self, tmp_path: Path) -> None:
        probe = make_probe(32)
        np.savez(tmp_path / "probe.npz", probeGuess=probe)
        np.testing.assert_array_equal(read_probe(tmp_path / "probe.npz"), probe)
        assert main(["simulate", "--out", str(tmp_path / "d.npz"), "--n-images", "4", "--no-progress",
                     "--probe-from", str(tmp_path / "probe.npz")]) == 0
        np.testing.assert_array_equal(MemmapDatasetBridge(tmp_path / "d.npz").probeGuess, probe)

    @pytest.mark.parametrize(
        ("arrays", "needle"),
        [
            ({"objectGuess": np.ones((4, 4), np.complex64)}, "no 'probeGuess' array (keys: ['objectGuess'])"),
            ({"probeGuess": np.ones((4, 4), np.float32)}, "square complex (N, N) array, got float32"),
            ({"probeGuess": np.ones((4, 5), np.complex64)}, "square complex (N, N) array, got complex64 (4, 5)"),
            ({"probeGuess": np.full((4, 4), np.nan, np.complex64)}, "finite and not all zero"),
            ({"probeGuess": np.array([object()], dtype=object)}, "not a readable .npz without pickle"),
        ],
    )
    def test_bad_probe_files_say_what_is_wrong(self, tmp_path: Path, arrays: dict[str, np.ndarray],
                                               needle: str) -> None:
        np.savez(tmp_path / "p.npz", **arrays)
        with pytest.raises(SimulationError, match=re.escape(needle)):
            read_probe(tmp_path / "p.npz")
        with pytest.raises(SimulationError, match="no such file"):
            read_probe(tmp_path / "missing.npz")

    def test_a_single_npy_array_is_refused_with_how_to_save_it(self, tmp_path: Path) -> None:
        np.save(tmp_path / "probe.npy", np.ones((4, 4), np.complex64))
        with pytest.raises(SimulationError, match=re.escape("a single .npy array, not an .npz; save it with")):
            read_probe(tmp_path / "probe.npy")


class TestScan:
    def test_grid_spacing_and_margin(self) -> None:
        x, y, shape = scan_positions(9, N=64, overlap=0.7, scan="grid")
        spacing = 0.3 * 64
        np.testing.assert_allclose(np.unique(np.round(x, 6)), 64 + spacing * np.arange(3))
        np.testing.assert_allclose(np.unique(np.round(y, 6)), 64 + spacing * np.arange(3))
        assert x.min() - 32 == 32, "margin of N/2 beyond the first patch edge"
        assert shape[1] - (x.max() + 32) >= 32 and shape[0] - (y.max() + 32) >= 32

    def test_sparse_overlap_spacing(self) -> None:
        x, _, _ = scan_positions(4, N=64, overlap=0.2)
        assert np.unique(x)[1] - np.unique(x)[0] == pytest.approx(0.8 * 64)

    def test_random_scan_is_jittered_grid(self) -> None:
        gx, gy, _ = scan_positions(25, N=64, overlap=0.7, scan="grid")
        rx, ry, shape = scan_positions(25, N=64, overlap=0.7, scan="random", seed=1)
        assert not np.allclose(rx, gx)
        assert rx.min() == pytest.approx(64) and ry.min() == pytest.approx(64)
        d = np.hypot(rx - rx.mean() - (gx - gx.mean()), ry - ry.mean() - (gy - gy.mean()))
        assert d.max() < 0.3 * 64 * 1.5
        assert shape[1] >= rx.max() + 64 and shape[0] >= ry.max() + 64

    def test_object_size(self) -> None:
        x, _, shape = scan_positions(4, N=16, overlap=0.5, object_size=200)
        assert shape == (200, 200)
        assert 16 < x.min() and x.max() < 184
        with pytest.raises(SimulationError, match="needs at least"):
            scan_positions(400, N=64, overlap=0.7, object_size=100)

    @pytest.mark.parametrize(("kwargs", "needle"),
                             [({"overlap": 1.0}, "overlap"), ({"overlap": -0.1}, "overlap"),
                              ({"scan": "spiral"}, "scan")])
    def test_bad_parameters(self, kwargs: dict[str, object], needle: str) -> None:
        with pytest.raises(SimulationError, match=needle):
            scan_positions(4, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(SimulationError, match="n_images"):
            scan_positions(0)


class TestForward:
    def test_integer_positions_match_a_numpy_reference(self) -> None:
        obj = make_object(80, seed=0)
        probe = make_probe(16)
        x, y = np.array([20.0, 41.0]), np.array([30.0, 25.0])
        amp = forward_amplitude(obj, probe, x, y)
        for i in range(2):
            r, c = int(y[i]), int(x[i])
            patch = obj[r - 8:r + 8, c - 8:c + 8]
            ref = np.abs(np.fft.fftshift(np.fft.fft2(probe * patch, norm="ortho")))
            np.testing.assert_allclose(amp[i], ref, rtol=1e-4, atol=1e-5)

    def test_parseval_holds(self) -> None:
        obj, probe = make_object(64, seed=1), make_probe(16)
        x, y = np.array([30.0]), np.array([33.0])
        amp = forward_amplitude(obj, probe, x, y)
        exit_energy = (np.abs(probe * obj[25:41, 22:38]) ** 2).sum()
        assert (amp.astype(np.float64) ** 2).sum() == pytest.approx(exit_energy, rel=1e-4)

    def test_subpixel_position_moves_the_beam_there(self) -> None:
        # The object stays on its pixel grid and the beam moves: with a probe band-limited and periodic over
        # its 16-pixel window the Fourier shift is exact, so the energy of the pattern (Parseval) is
        # sum |O[k]|^2 |P(k - c)|^2 over the object's own pixels k, and tells where the beam was, sign
        # included, even on a pixel-sharp object.
        def probe_at(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:  # centred at (8, 8) of its window
            return (1.2 + np.cos(2 * np.pi * (cols - 8) / 16)) * (1.1 + np.sin(2 * np.pi * (rows - 8) / 16))

        obj = make_object(64, seed=4)
        j = np.arange(16, dtype=np.float64)
        probe = probe_at(j[None, :], j[:, None]).astype(np.complex64)
        x, y = 30.25, 29.6
        rows, cols = np.mgrid[0:64, 0:64].astype(np.float64)

        def energy_if_beam_at(cx: float, cy: float) -> float:
            window = (np.abs(cols - 30) <= 8) & (cols - 30 < 8) & (np.abs(rows - 30) <= 8) & (rows - 30 < 8)
            beam = probe_at(cols - (cx - 8), rows - (cy - 8))
            return float((np.abs(obj) ** 2 * beam**2)[window].sum())

        pattern = forward_amplitude(obj, probe, np.array([x]), np.array([y]))[0].astype(np.float64)
        got = float((pattern**2).sum())
        assert got == pytest.approx(energy_if_beam_at(x, y), rel=1e-5)
        wrong_sign = energy_if_beam_at(2 * 30 - x, 2 * 30 - y)
        assert abs(got - wrong_sign) > 100 * abs(got - energy_if_beam_at(x, y))

    def test_amplitudes_are_the_physics_forward_model_of_the_true_object(self) -> None:
        """The diffraction is physics.forward (the beam moves over the object) of objectGuess at the stored
        positions, also at exact half pixels, where floor(x + 0.5) and round-half-to-even disagree."""
        obj, probe = make_object(64, seed=5), make_probe(16)
        x = np.array([30.0, 30.5, 31.5, 29.25, 32.5, 33.7, 28.5])
        y = np.array([31.5, 30.5, 28.0, 32.5, 29.5, 30.2, 34.5])
        amp = forward_amplitude(obj, probe, x, y)
        centres = torch.from_numpy(np.stack([x, y], axis=1))
        expected = physics.forward(torch.from_numpy(obj), torch.from_numpy(probe), centres)
        np.testing.assert_allclose(amp, expected.numpy(), rtol=1e-5, atol=1e-6 * float(amp.max()))

    def test_mean_counts_equal_nphotons(self) -> None:
        obj, probe = make_object(160, seed=2), make_probe(32)
        x, y, _ = scan_positions(100, N=32, overlap=0.8, object_size=160)
        amp = forward_amplitude(obj, probe, x, y, nphotons=1e4, seed=0)
        counts = amp.astype(np.float64) ** 2
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)  # amplitude = sqrt(integer counts)
        assert counts.sum(axis=(1, 2)).mean() == pytest.approx(1e4, rel=0.02)
        np.testing.assert_array_equal(amp, forward_amplitude(obj, probe, x, y, nphotons=1e4, seed=0))

    def test_positions_off_the_object(self) -> None:
        with pytest.raises(SimulationError, match="run off"):
            forward_amplitude(make_object(40, 0), make_probe(16), np.array([5.0]), np.array([20.0]))

    def test_progress_reports(self) -> None:
        seen: list[tuple[int, int]] = []
        x, y, shape = scan_positions(10, N=16, overlap=0.5)
        forward_amplitude(make_object(shape, 0), make_probe(16), x, y, nphotons=100, seed=0, chunk=4,
                          progress=lambda done, total: seen.append((done, total)))
        assert seen[-1] == (20, 20) and [d for d, _ in seen] == sorted(d for d, _ in seen)


class TestDataset:
    def test_simulate_dataset_is_deterministic(self) -> None:
        a = simulate_dataset(30, nphotons=1e3, overlap=0.7, seed=0, N=32)
        b = simulate_dataset(30, nphotons=1e3, overlap=0.7, seed=0, N=32)
        c = simulate_dataset(30, nphotons=1e3, overlap=0.7, seed=1, N=32)
        np.testing.assert_array_equal(a.diffraction, b.diffraction)
        np.testing.assert_array_equal(a.objectGuess, b.objectGuess)
        assert a.objectGuess.shape == c.objectGuess.shape and not np.allclose(a.objectGuess, c.objectGuess)
        assert a.diffraction.shape == (30, 32, 32) and a.diffraction.dtype == np.float32

    def test_given_probe_is_used(self) -> None:
        probe = make_probe(16, defocus_rad=0.0)
        data = simulate_dataset(4, nphotons=1e3, overlap=0.5, seed=0, N=16, probe=probe)
        np.testing.assert_array_equal(data.probeGuess, probe)
        with pytest.raises(SimulationError, match="pass N=16"):
            simulate_dataset(4, nphotons=1e3, overlap=0.5, seed=0, N=32, probe=probe)

    def test_written_npz_maps_through_the_bridge(self, tmp_path: Path) -> None:
        data = simulate_dataset(20, nphotons=1e3, overlap=0.7, seed=0, N=32)
        path = write_npz(tmp_path / "sim.npz", data)
        bridge = MemmapDatasetBridge(path, validate="full")
        assert bridge.storage == "in-place" and bridge.source_key == "diffraction"
        np.testing.assert_array_equal(bridge.diffraction, data.diffraction)
        np.testing.assert_array_equal(bridge.objectGuess, data.objectGuess)
        assert bridge.nphotons == 1e3
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.npz"], "no temporary files left behind"

    def test_legacy_key_and_compression(self, tmp_path: Path) -> None:
        data = simulate_dataset(8, nphotons=1e3, overlap=0.7, seed=0, N=16)
        path = write_npz(tmp_path / "old.npz", data, legacy_key=True, compress=True)
        with np.load(path) as npz:
            assert "diff3d" in npz.files and "diffraction" not in npz.files
        bridge = MemmapDatasetBridge(path, cache_dir=tmp_path / "c")
        assert bridge.source_key == "diff3d"
        np.testing.assert_array_equal(bridge.diffraction, data.diffraction)

    def test_split_by_region_is_disjoint(self) -> None:
        data = simulate_dataset(36, nphotons=1e3, overlap=0.7, seed=0, N=16)
        train, test = split_by_region(data, 0.5)
        assert len(train.xcoords) + len(test.xcoords) == 36 and len(test.xcoords) > 0
        assert train.xcoords.max() < test.xcoords.min()
        assert not set(train.scan_index.tolist()) & set(test.scan_index.tolist())
        np.testing.assert_array_equal(train.objectGuess, data.objectGuess)
        np.testing.assert_array_equal(test.objectGuess, data.objectGuess)
        with pytest.raises(SimulationError, match="test fraction"):
            split_by_region(data, 1.0)
