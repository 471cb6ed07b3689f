"""pty-chi's LSQML (AdvancedPhotonSource/pty-chi, Apache-2.0) as a baseline: our data and model converted to
pty-chi's conventions here, at the boundary, and its estimate converted back.

Optional: `pip install 'ptycho-harness[ptychi]'`. pty-chi needs torchvision, whose wheels pin one torch
version (README, set-up). It is imported only when this method runs.

The conversions, for pty-chi 2.2.0 (each tested in tests/ptycho_torch/baselines/test_ptychi_lsqml.py):
- the model: LSQML cuts the object window at the rounded position and moves the probe by the rest with a
  Fourier shift, over the probe's own window: the beam moves, as in physics.forward (docs/findings.md,
  PHYS-001); nothing to convert.
- positions: ours are (x, y) per pattern; pty-chi takes separate position_x_px and position_y_px arrays
  and maps them to object pixels by adding position_origin_coords o. Its window starts at
  round(round(p) + o - (N - 1) / 2), ours at nearest_pixel(c) - N // 2: p = c and o = (N - 1) / 2 - N // 2
  (-0.5 for even N, 0 for odd) make the two equal. At exact half pixels pty-chi rounds half to even where
  we round halves up; there its window sits one pixel lower and its probe is moved by +0.5 px instead of
  -0.5 px, which changes only the probe's circular wrap-around in its window.
- diffraction: ours is amplitudes sqrt(counts) with the zero frequency at pixel (N // 2, N // 2)
  (physics.far_field's fftshift); pty-chi's forward model predicts |fft2(psi)|^2 with it at (0, 0). It gets
  counts = amplitude^2, ifftshift-ed here, and data_options.fft_shift=False (its own fftshift is one pixel
  off for odd N).
- normalisation: our counts are s^2 |fft2(O P, norm="ortho")|^2 = |fft2(O P s / sqrt(N N))|^2, so pty-chi
  gets the probe P s / N (s = physics.intensity_scale, as our baselines use) and keeps the object at
  |O| ~ 1, like ours; a refined probe comes back divided by the same factor.
- layouts: object (H, W) <-> (1, H, W) (slices); probe (N, N) <-> (1, 1, N, N) (OPR modes, modes).
- what pty-chi would otherwise do by itself is off: its first-epoch probe rescaling, the object/probe
  ambiguity removal (both rescaled every 10 epochs), position correction.
- the noise model is LSQML's default, Gaussian on the amplitudes with sigma 0.5: the square root of Poisson
  counts has a standard deviation of about 0.5 (Anscombe), so this is the variance-stabilised Poisson
  likelihood. pty-chi's own Poisson model converged far slower here (amplitude / phase SSIM 0.43 / 0.19
  after 100 epochs against 0.70 / 0.55, 49 positions of 64 px at 1e5; docs/findings.md, BASE-004).
- the global state pty-chi sets (torch's default device and dtype, the torch, numpy and random seeds) is
  restored after every call into it.
"""
from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches, PassStats, Problem, check_problem
from ptycho_torch.baselines.config import ReconstructionConfig
from ptycho_torch.errors import BaselineError

INSTALL = "pip install 'ptycho-harness[ptychi]' (README, set-up: it needs the torch that torchvision pins)"


def position_origin(n: int) -> float:
    """pty-chi's position_origin_coords (per axis) that puts its N-pixel window where ours is."""
    return (n - 1) / 2 - n // 2


def counts_for_ptychi(diffraction: np.ndarray) -> np.ndarray:
    """(P, N, N) amplitudes sqrt(counts), zero frequency at (N // 2, N // 2) -> counts with it at (0, 0)."""
    counts = np.square(np.asarray(diffraction, dtype=np.float32))
    return np.fft.ifftshift(counts, axes=(-2, -1))


def probe_factor(scale: float, n: int) -> float:
    """pty-chi's probe is ours times this: s / N (its FFT is unnormalised, ours orthonormal)."""
    return scale / n


@contextlib.contextmanager
def _restored_globals() -> Iterator[None]:
    """Run pty-chi, then put back the global torch, numpy and random state it sets."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    torch_rng, numpy_rng, python_rng = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        with warnings.catch_warnings():
            # pty-chi 2.2 reads a scalar off a tensor that requires grad, harmlessly, once per epoch
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
            yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(device)
        torch.random.set_rng_state(torch_rng)
        np.random.set_state(numpy_rng)
        random.setstate(python_rng)


def _api() -> Any:
    try:
        from ptychi import api
    except ImportError as exc:
        raise BaselineError(
            f"method ptychi-lsqml needs pty-chi, which is not importable ({exc}); {INSTALL}") from None
    return api


def build_task(problem: Problem, patterns: np.ndarray, scale: float, config: ReconstructionConfig,
               device: torch.device) -> Any:
    """A pty-chi PtychographyTask with LSQML options for our problem and its checked patterns (P, N, N)
    (every conversion of the module docstring)."""
    api = _api()
    from ptychi.api.task import PtychographyTask

    n = problem.patch_size
    options = api.LSQMLOptions()
    options.data_options.fft_shift = False  # counts_for_ptychi has moved the zero frequency to (0, 0)

    obj = options.object_options
    obj.pixel_size_m = 1.0
    obj.determine_position_origin_coords_by = api.ObjectPosOriginCoordsMethods.SPECIFIED
    obj.position_origin_coords = np.full(2, position_origin(n))
    obj.remove_object_probe_ambiguity.enabled = False

    probe = options.probe_options
    probe.optimizable = config.refine_probe
    probe.optimization_plan.start = config.probe_start - 1  # pty-chi counts epochs from 0
    options.probe_position_options.optimizable = False

    recon = options.reconstructor_options
    recon.num_epochs = max(config.iterations, 1)
    recon.batch_size = min(config.batch_size, problem.n_patterns)
    recon.noise_model = api.NoiseModels.GAUSSIAN
    recon.gaussian_noise_std = 0.5
    recon.rescale_probe_intensity_in_first_epoch = False
    recon.default_device = api.Devices.GPU if device.type == "cuda" else api.Devices.CPU
    recon.random_seed = config.seed
    try:
        with _restored_globals():
            return PtychographyTask(
                options,
                diffraction_data=counts_for_ptychi(patterns),
                object_data=problem.initial_object[None].astype(np.complex64),
                probe_data=(problem.probe * probe_factor(scale, n))[None, None].astype(np.complex64),
                probe_position_x_px=problem.positions[:, 0].astype(np.float32),
                probe_position_y_px=problem.positions[:, 1].astype(np.float32),
            )
    except (ValueError, RuntimeError) as exc:
        raise BaselineError(f"pty-chi refused the reconstruction: {exc}") from None


class PtychiLSQML:
    """The Solver that reconstruct_iterative drives: each iterate() runs one pty-chi epoch, then scores the
    new estimate with our forward model (physics.forward, the same model), outside the timed pass."""

    def __init__(self, problem: Problem, patterns: np.ndarray, scale: float, config: ReconstructionConfig,
                 device: torch.device) -> None:
        self.task = build_task(problem, patterns, scale, config, device)
        self.given_probe = torch.from_numpy(problem.probe).to(device)
        self.refine = config.refine_probe
        self.factor = probe_factor(scale, problem.patch_size)
        self.scale = scale
        self.device = device

    @property
    def object(self) -> Tensor:
        """(H, W) complex64 on our device."""
        return self.task.get_data("object")[0].to(device=self.device, dtype=torch.complex64)

    @property
    def probe(self) -> Tensor:
        """(N, N) complex64 on our device, in the scale it was given in (the given probe itself unless
        refined)."""
        if not self.refine:
            return self.given_probe
        data = self.task.get_data("probe")[0, 0] / self.factor
        return data.to(device=self.device, dtype=torch.complex64)

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None:
        started = time.perf_counter()
        with _restored_globals():
            self.task.run(1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ran = time.perf_counter() - started
        obj, probe = self.object, self.probe
        with torch.no_grad():
            for measured, centres in batches():
                stats.add((self.scale * physics.forward(obj, probe, centres)).square(), measured)
        stats.exclude(time.perf_counter() - started - ran)


def ptychi_amplitudes(obj: np.ndarray, probe: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(P, N, N) float32: pty-chi's own forward model of obj (H, W) under probe (N, N) at positions (P, 2)
    = (x, y), given through the conversions above and returned as our unit-scale amplitudes (zero frequency
    at (N // 2, N // 2)): a second simulator, to check the conversions and the model against."""
    n = int(probe.shape[0])
    empty = np.zeros((len(positions), n, n), dtype=np.float32)
    problem = check_problem(empty, positions, probe, (int(obj.shape[0]), int(obj.shape[1])), obj)
    config = ReconstructionConfig(method="ptychi-lsqml", iterations=1, device="cpu")
    task = build_task(problem, empty, 1.0, config, torch.device("cpu"))
    with _restored_globals(), torch.no_grad():
        counts = task.reconstructor.forward_model.forward(torch.arange(len(positions))).cpu().numpy()
    return np.sqrt(np.fft.fftshift(counts, axes=(-2, -1))).astype(np.float32)
