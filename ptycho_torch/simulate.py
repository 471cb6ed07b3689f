"""Synthetic fly64-like ptychography datasets: object, probe, scan, far-field Poisson amplitudes.

Conventions (docs/specs/data_contracts.md#simulated-data):
- Positions are patch centres in object pixels, origin at pixel (0, 0) of objectGuess; x is the column
  (axis 1), y the row (axis 0).
- Diffraction comes only from the package's forward model, `physics.forward`: the beam moves over the
  object's fixed pixel grid, so the object window for centre c is cut at physics.nearest_pixel(c) as it is
  and the probe is moved by the rest, c - nearest_pixel(c), with a Fourier (sub-pixel) shift; pattern
  content corresponds exactly to the stored, possibly fractional, position (docs/findings.md, PHYS-001).
  The far field is orthonormal (Parseval holds).
- Noise: counts ~ Poisson((A s)^2) with s = physics.photon_scale, chosen so that the mean total expected
  counts per pattern equals nphotons. Stored amplitude = sqrt(counts), float32.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from ptycho_torch import physics
from ptycho_torch.data_contract import CANONICAL_KEY, LEGACY_KEY
from ptycho_torch.errors import SimulationError

Scan = Literal["grid", "random"]
Progress = Callable[[int, int], None]  # (patterns done, total)

CHUNK = 256  # patterns per forward call
WINDOW = physics.Interpolation.NEAREST  # the object window the forward model reads (physics.forward)


@dataclass(frozen=True)
class SimulatedData:
    """diffraction (n, N, N) float32 amplitude; xcoords, ycoords (n,) float64; probeGuess (N, N) and
    objectGuess (M, M') complex64; scan_index (n,) int64; nphotons the mean total counts per pattern."""

    diffraction: np.ndarray
    xcoords: np.ndarray
    ycoords: np.ndarray
    probeGuess: np.ndarray
    objectGuess: np.ndarray
    scan_index: np.ndarray
    nphotons: float

    def arrays(self, *, legacy_key: bool = False) -> dict[str, np.ndarray]:
        return {
            LEGACY_KEY if legacy_key else CANONICAL_KEY: self.diffraction,
            "xcoords": self.xcoords, "ycoords": self.ycoords, "probeGuess": self.probeGuess,
            "objectGuess": self.objectGuess, "scan_index": self.scan_index,
            "nphotons": np.array(self.nphotons, dtype=np.float64),
        }

    def subset(self, mask: np.ndarray) -> SimulatedData:
        return replace(self, diffraction=self.diffraction[mask], xcoords=self.xcoords[mask],
                       ycoords=self.ycoords[mask], scan_index=self.scan_index[mask])


def _unit(field: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(field, [1, 99])
    return np.clip((field - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def _texture(shape: tuple[int, int], rng: np.random.Generator, feature_px: float) -> np.ndarray:
    """[0, 1] texture: Voronoi cells about `feature_px` across (sharp edges) over smooth blobs."""
    h, w = shape
    n_cells = max(4, int(h * w / feature_px**2))
    seeds = rng.random((n_cells, 2)) * (h, w)
    values = rng.random(n_cells)
    values[rng.random(n_cells) < 0.3] = 0.0  # empty cells: flat background between features
    yy, xx = np.mgrid[0:h, 0:w]
    _, owner = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float32))
    cells = values[owner].reshape(h, w)
    blobs = _unit(gaussian_filter(rng.standard_normal((h, w)), sigma=feature_px / 3))
    return _unit(0.6 * cells + 0.4 * blobs)


def make_object(shape: tuple[int, int] | int, seed: int, *, feature_px: float = 7.0) -> np.ndarray:
    """(H, W) complex64: amplitude in [0.3, 1], phase in [-1, 1] rad, features of about 3 to 10 pixels."""
    shape = (shape, shape) if isinstance(shape, int) else tuple(shape)
    if min(shape) < 1:
        raise SimulationError(f"object shape {shape} must be positive")
    rng = np.random.default_rng(seed)
    amp_tex, phase_tex = _texture(shape, rng, feature_px), _texture(shape, rng, feature_px)
    amplitude = 1.0 - 0.7 * amp_tex  # thicker features absorb more ...
    phase = 2.0 * (0.7 * phase_tex + 0.3 * amp_tex) - 1.0  # ... and partly shift phase with them
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def make_probe(N: int = 64, *, aperture_radius_px: float | None = None, defocus_rad: float | None = None,
               central_stop: float = 0.45, coma_rad: float = 2.0, edge_px: float = 1.0) -> np.ndarray:
    """(N, N) complex64 focused probe like the fly64 probe of real scans: the far field of a zone-plate-like
    pupil, an annulus in Fourier space (outer radius 0.45 N, a central stop of `central_stop` times that
    radius, edges softened over `edge_px`, so the probe's tails do not wrap around the window, SIM-001), with
    defocus (`defocus_rad` at the pupil's edge, default 22 rad at N = 64, scaled with N) and a coma term
    (`coma_rad` at the edge). In real space: a ring about 3N/8 across around a fainter central spot, with a
    curved phase; 91% of the energy within N/4 of the centre at N = 64 (86% at N = 32), and a dense scan
    (spacing 0.3 N) lights every pixel at >= 0.1 of one probe's peak, as the fly001 probe does. Peak 1.

    The coma makes it not centre-symmetric (P(-r) != P(r)): with a symmetric probe the twin image fits
    every pattern exactly as well as the object (SIM-003). central_stop=0 and coma_rad=0 give the plain
    defocused aperture."""
    radius = 0.45 * N if aperture_radius_px is None else aperture_radius_px
    defocus = 22.0 * N / 64 if defocus_rad is None else defocus_rad
    k = np.fft.fftshift(np.fft.fftfreq(N) * N)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    kr = np.hypot(kx, ky)
    if edge_px > 0:
        aperture = 0.5 * (1.0 - np.tanh((kr - radius) / edge_px))
        if central_stop > 0:
            aperture *= 0.5 * (1.0 + np.tanh((kr - central_stop * radius) / edge_px))
    else:
        aperture = ((kr <= radius) & (kr >= central_stop * radius)) * 1.0
    rho2, u = (kr / radius) ** 2, kx / radius
    pupil = aperture * np.exp(1j * (defocus * rho2 + coma_rad * rho2 * u))
    probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
    return (probe / np.abs(probe).max()).astype(np.complex64)


def read_probe(path: str | os.PathLike[str]) -> np.ndarray:
    """The `probeGuess` of any .npz (a dataset or a probe-only file) as (N, N) complex64, read without pickle;
    SimulationError naming the file and what to fix if it is missing, unreadable or not a square complex
    array of finite values."""
    path = Path(path)
    if not path.is_file():
        raise SimulationError(f"--probe-from {path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise SimulationError(f"--probe-from {path}: a single .npy array, not an .npz; save it with "
                                  "numpy.savez(PATH, probeGuess=probe)")
        with loaded as npz:
            if "probeGuess" not in npz.files:
                raise SimulationError(f"--probe-from {path}: no 'probeGuess' array (keys: {sorted(npz.files)}); "
                                      "pass an .npz holding the probe as probeGuess")
            probe = npz["probeGuess"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise SimulationError(f"--probe-from {path}: not a readable .npz without pickle ({exc})") from None
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1] or not np.iscomplexobj(probe):
        raise SimulationError(f"--probe-from {path}: probeGuess must be a square complex (N, N) array, got "
                              f"{probe.dtype} {probe.shape}")
    if not np.isfinite(probe).all() or not np.abs(probe).max() > 0:
        raise SimulationError(f"--probe-from {path}: probeGuess must be finite and not all zero")
    return probe.astype(np.complex64)


def scan_positions(n_images: int, *, N: int = 64, overlap: float = 0.7, scan: Scan = "grid",
                   seed: int = 0, object_size: int | tuple[int, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(xcoords, ycoords, object_shape): a raster grid (or the grid with uniform jitter of +-spacing/2 for
    "random") at spacing (1 - overlap) * N, placed with a margin of N/2 beyond every patch edge."""
    if n_images < 1:
        raise SimulationError(f"n_images must be >= 1, not {n_images}")
    if not 0.0 <= overlap < 1.0:
        raise SimulationError(f"overlap must be in [0, 1), not {overlap} (dense ~0.7, sparse ~0.2)")
    if scan not in ("grid", "random"):
        raise SimulationError(f"scan must be 'grid' or 'random', not {scan!r}")
    spacing = (1.0 - overlap) * N
    cols = math.ceil(math.sqrt(n_images))
    i = np.arange(n_images)
    pos = np.stack([i % cols, i // cols], axis=1).astype(np.float64) * spacing  # (n, 2) as (x, y)
    if scan == "random":
        pos += np.random.default_rng(seed).uniform(-spacing / 2, spacing / 2, pos.shape)
    pos += N - pos.min(axis=0)
    needed = (math.ceil(pos[:, 1].max()) + N, math.ceil(pos[:, 0].max()) + N)  # (rows, cols)
    shape = needed
    if object_size is not None:
        shape = (object_size, object_size) if isinstance(object_size, int) else tuple(object_size)
        if shape[0] < needed[0] or shape[1] < needed[1]:
            raise SimulationError(f"object_size {shape} cannot hold {n_images} positions at overlap "
                                  f"{overlap}; it needs at least {needed} (or leave object_size unset)")
        pos += ((shape[1] - needed[1]) // 2, (shape[0] - needed[0]) // 2)
    return pos[:, 0].copy(), pos[:, 1].copy(), shape


def forward_amplitude(obj: np.ndarray, probe: np.ndarray, xcoords: np.ndarray, ycoords: np.ndarray, *,
                      nphotons: float | None = None, seed: int | None = None, chunk: int = CHUNK,
                      progress: Progress | None = None) -> np.ndarray:
    """(n, N, N) float32 far-field amplitudes of probe * object patch (physics.forward, see the docstring).

    Without `nphotons`: noiseless |F|. With it: sqrt(Poisson((s |F|)^2)) with s chosen so that the mean
    total expected counts per pattern is `nphotons`, noise drawn from a generator seeded by `seed`.
    """
    N = probe.shape[0]
    if probe.shape != (N, N):
        raise SimulationError(f"probe must be square, got {probe.shape}")
    if nphotons is not None and not nphotons > 0:
        raise SimulationError(f"nphotons must be positive, not {nphotons}")
    x, y = np.asarray(xcoords, np.float64), np.asarray(ycoords, np.float64)
    first_x, last_x = physics.pixel_range(x, N, interpolation=WINDOW)
    first_y, last_y = physics.pixel_range(y, N, interpolation=WINDOW)
    if min(first_x.min(), first_y.min()) < 0 or last_x.max() >= obj.shape[1] or last_y.max() >= obj.shape[0]:
        raise SimulationError(f"scan positions run off the {obj.shape} object (each patch needs N/2 "
                              "pixels around its centre's nearest pixel); enlarge the object")
    n = len(x)
    total = 2 * n if nphotons is not None else n
    obj_t = torch.from_numpy(np.ascontiguousarray(obj, dtype=np.complex64))
    probe_t = torch.from_numpy(np.ascontiguousarray(probe, dtype=np.complex64))
    centres = torch.from_numpy(np.stack([x, y], axis=1))
    out = np.empty((n, N, N), dtype=np.float32)
    for k0 in range(0, n, chunk):
        k1 = min(n, k0 + chunk)
        out[k0:k1] = physics.forward(obj_t, probe_t, centres[k0:k1]).numpy()
        if progress:
            progress(k1, total)
    if nphotons is None:
        return out
    scale = physics.photon_scale(out, nphotons)
    rng = np.random.default_rng(seed)
    for k0 in range(0, n, chunk):
        k1 = min(n, k0 + chunk)
        out[k0:k1] = physics.poisson_amplitudes(out[k0:k1], scale, rng)
        if progress:
            progress(n + k1, total)
    return out


def simulate_dataset(n_images: int, *, nphotons: float, overlap: float, seed: int, N: int = 64,
                     scan: Scan = "grid", probe: np.ndarray | None = None,
                     object_size: int | tuple[int, int] | None = None,
                     progress: Progress | None = None) -> SimulatedData:
    """A complete synthetic dataset; the same arguments give the same arrays, bit for bit."""
    if probe is None:
        probe = make_probe(N)
    elif probe.shape != (N, N):
        raise SimulationError(f"probe is {probe.shape} but N={N}; pass N={probe.shape[0]} "
                              "(square probes only)")
    obj_seed, scan_seed, noise_seed = (int(s.generate_state(1)[0])
                                       for s in np.random.SeedSequence(seed).spawn(3))
    x, y, shape = scan_positions(n_images, N=N, overlap=overlap, scan=scan, seed=scan_seed,
                                 object_size=object_size)
    obj = make_object(shape, seed=obj_seed)
    diff = forward_amplitude(obj, probe, x, y, nphotons=nphotons, seed=noise_seed, progress=progress)
    return SimulatedData(diff, x, y, probe.astype(np.complex64), obj, np.arange(n_images, dtype=np.int64),
                         float(nphotons))


def split_by_region(data: SimulatedData, test_fraction: float) -> tuple[SimulatedData, SimulatedData]:
    """(train, test): test holds the positions in the right-most `test_fraction` of the scanned columns,
    train the rest; positions are disjoint, both keep the full objectGuess."""
    if not 0.0 < test_fraction < 1.0:
        raise SimulationError(f"test fraction must be in (0, 1), not {test_fraction}")
    threshold = np.quantile(data.xcoords, 1.0 - test_fraction)
    test = data.xcoords >= threshold
    if test.all() or not test.any():
        raise SimulationError(f"a test fraction of {test_fraction} leaves one side of the split empty "
                              f"({len(data.xcoords)} positions); use more images or another fraction")
    return data.subset(~test), data.subset(test)


def write_npz(path: str | os.PathLike[str], data: SimulatedData, *, legacy_key: bool = False,
              compress: bool = False) -> Path:
    """Write a contract-valid NPZ atomically; uncompressed by default, with the diffraction 64-byte
    aligned in the file, so the bridge maps it in place."""
    from ptycho_torch.npz_format import save_npz

    return save_npz(path, data.arrays(legacy_key=legacy_key), compress=compress)


def split_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(f"{out.stem}_train{out.suffix}"), out.with_name(f"{out.stem}_test{out.suffix}")


def simulate_command(*, out: str, n_images: int = 2000, nphotons: float = 1e4, overlap: float = 0.7,
                     seed: int = 0, N: int | None = None, scan: Scan = "grid", object_size: int | None = None,
                     probe_from: str | None = None, legacy_key: bool = False, compress: bool = False,
                     split: float | None = None, progress_bar: bool | None = None) -> int:
    """`ptycho-torch simulate`: generate, write atomically, then print the bridge's summary of each file."""
    from rich.console import Console
    from rich.progress import Progress as Bar

    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    probe = None
    if probe_from is not None:
        probe = read_probe(probe_from)
        if N is not None and probe.shape != (N, N):
            raise SimulationError(f"--probe-from {probe_from} has a {probe.shape} probe but --N is {N}; "
                                  "drop --N or use a matching probe")
        N = probe.shape[0]
    N = 64 if N is None else N
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise SimulationError(f"output directory {out_path.parent} does not exist; create it first")
    show = n_images >= 500 if progress_bar is None else progress_bar
    with Bar(console=Console(stderr=True), transient=True, disable=not show) as bar:
        task = bar.add_task(f"simulating {n_images} patterns", total=None)
        data = simulate_dataset(n_images, nphotons=nphotons, overlap=overlap, seed=seed, N=N, scan=scan,
                                probe=probe, object_size=object_size,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    if split is None:
        written = [write_npz(out_path, data, legacy_key=legacy_key, compress=compress)]
    else:
        train, test = split_by_region(data, split)
        written = [write_npz(p, part, legacy_key=legacy_key, compress=compress)
                   for p, part in zip(split_paths(out_path), (train, test), strict=True)]
    for path in written:
        print(MemmapDatasetBridge(path).summary())
    return 0
