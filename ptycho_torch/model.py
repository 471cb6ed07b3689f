"""PtychoPINN: a CNN maps diffraction amplitudes to object patches; the physics closes the loop to a loss.

Scales: the stored diffraction is sqrt(counts) ("counts scale"). The network sees diffraction / s
(s = intensity_scale, "unit scale"), divided further by a fixed probe-derived constant so its inputs are
O(1); the physics output `pred_amplitude` is in unit scale, and the Poisson loss compares (pred * s)^2 with
the counts diffraction^2.

Layout: diffraction (B, C, N, N) float32, channels first, C = gridsize**2 patterns per group;
coords_relative (B, C, 2) float32 = (x, y) offset of each pattern from its group centre in object pixels;
positions (B, C, 2) float32 = the (x, y) scan positions themselves in object pixels (coords_global).

Physics: the simulator's, physics.object_windows + physics.beam_amplitude (docs/findings.md, PHYS-001,
TRAIN-006). The network predicts, for each pattern, the object window the beam lit: the object's pixels
from nearest_pixel(position) - N/2 on, as they are. The C windows of a group are merged at their whole-pixel
offsets (nearest_pixel(p_i) - nearest_pixel(p_j): exact, no interpolation), and each is lit by the probe
moved by its position's sub-pixel remainder. Without positions the model knows only coords_relative: it
merges at those offsets and leaves the probe unmoved, which is the same physics only for scans on whole
pixels; the trainer and inference always pass the positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ptycho_torch import options, physics
from ptycho_torch.errors import ModelConfigError
from ptycho_torch.overlap import MergeWeights, merge_group, merge_weights
from ptycho_torch.physics import Interpolation


class LossKind(StrEnum):
    POISSON = "poisson"  # mean Poisson NLL per pixel on counts
    MAE = "mae"  # mean |A_pred - A_measured| per pixel, in unit scale


class SupportFill(StrEnum):
    """What a patch holds outside its support window (ModelConfig.support)."""

    VACUUM = "vacuum"  # amplitude 1, phase 0: free space, which transmits the probe unchanged
    ZERO = "zero"  # amplitude 0: the reference PtychoPINN's zero padding (its pad_object)


class Encoder(StrEnum):
    """How the network reads a group of C patterns (ModelConfig.encoder)."""

    GROUP = "group"  # one encoder-decoder with the C patterns as its channels (the reference PtychoPINN's)
    PATTERN = "pattern"  # one encoder-decoder per pattern, its weights shared: a gridsize-1 network per channel


class AmplitudeActivation(StrEnum):
    SOFTPLUS = "softplus"  # floor + softplus(x): unbounded above
    SIGMOID = "sigmoid"  # floor + amplitude_max * sigmoid(x): bounded, for objects known to be weak


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of PtychoPINN; `to_dict()` is what a bundle stores."""

    N: int = 64  # patch / detector side in pixels; divisible by 2**depth
    gridsize: int = 1  # patterns per group = gridsize**2 (input channels)
    n_filters: int = 16  # channels of the first encoder stage; doubled per stage
    depth: int = 3  # down-sampling stages (and as many up-sampling stages)
    probe_modes: int = 1  # incoherent probe modes M; the probe given must have this many
    loss: LossKind = LossKind.POISSON
    amplitude_activation: AmplitudeActivation = AmplitudeActivation.SOFTPLUS
    amplitude_floor: float = 1e-3  # keeps the object amplitude, and so the Poisson rate, strictly positive
    amplitude_max: float = 2.0  # only for the sigmoid activation
    learn_probe: bool = False  # probe as a trainable parameter instead of a fixed buffer
    overlap_constraint: bool = True  # gridsize > 1: merge the C patches of a group (overlap.py)
    merge_weights: MergeWeights = MergeWeights.PROBE  # how the patches count where they overlap
    patch_interpolation: Interpolation = Interpolation.FOURIER  # fractional merges: only without positions
    poisson_eps: float = 1e-8  # in counts: log(rate + eps)
    support: int = 0  # side in pixels of the central window the decoder's object fills; 0 = the whole patch
    support_fill: SupportFill = SupportFill.VACUUM  # the patch outside the support window
    probe_mask_radius: float = 0.0  # pixels: the physics' probe multiplied by a disk this wide; 0 = no mask
    encoder: Encoder = Encoder.GROUP  # gridsize > 1: the C patterns as one network's channels, or one each

    def __post_init__(self) -> None:
        for name, enum in (
            ("loss", LossKind),
            ("amplitude_activation", AmplitudeActivation),
            ("merge_weights", MergeWeights),
            ("patch_interpolation", Interpolation),
            ("support_fill", SupportFill),
            ("encoder", Encoder),
        ):
            object.__setattr__(self, name, options.choice(enum, getattr(self, name), f"ModelConfig.{name}",
                                                          error=ModelConfigError))
        for name in ("N", "gridsize", "n_filters", "depth", "probe_modes"):
            options.integer(getattr(self, name), f"ModelConfig.{name}", minimum=1, error=ModelConfigError)
        for name in ("learn_probe", "overlap_constraint"):
            options.boolean(getattr(self, name), f"ModelConfig.{name}", error=ModelConfigError)
        for name in ("amplitude_floor", "amplitude_max", "poisson_eps"):
            object.__setattr__(self, name, options.number(getattr(self, name), f"ModelConfig.{name}", above=0,
                                                          error=ModelConfigError))
        options.integer(self.support, "ModelConfig.support (0 = the whole patch)", minimum=0, error=ModelConfigError)
        if self.support > self.N:
            raise ModelConfigError(f"ModelConfig.support = {self.support} is wider than the patch (N = {self.N}); "
                                   f"pick a window side <= {self.N}, or 0 for the whole patch")
        object.__setattr__(self, "probe_mask_radius", options.number(
            self.probe_mask_radius, "ModelConfig.probe_mask_radius (0 = no mask)", minimum=0,
            error=ModelConfigError))
        if self.N % (2**self.depth):
            raise ModelConfigError(
                f"ModelConfig.N = {self.N} must be divisible by 2**depth = {2**self.depth}; "
                f"lower depth or pick N a multiple of {2**self.depth}"
            )

    @property
    def channels(self) -> int:
        """Patterns per group, C = gridsize**2."""
        return self.gridsize**2

    @property
    def inputs_per_pass(self) -> int:
        """Patterns the encoder-decoder reads at once, its input channels: C for Encoder.GROUP, else 1."""
        return self.channels if self.encoder is Encoder.GROUP else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (enums as their string values)."""
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of to_dict; missing keys take defaults, unknown keys are rejected."""
        if not isinstance(data, Mapping):
            raise ModelConfigError(
                f"model config must be a mapping of field -> value, got {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelConfigError(f"unknown model config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))


@dataclass(frozen=True, eq=False)  # eq on tensors is elementwise, not a bool
class ModelOutput:
    """What PtychoPINN.forward returns; all tensors share the batch layout (B, C, ...)."""

    object_patches: Tensor  # (B, C, N, N) complex64, after the overlap constraint; what the physics saw
    raw_object_patches: Tensor  # (B, C, N, N) complex64, straight from the network
    pred_amplitude: Tensor  # (B, C, N, N) float32, predicted diffraction amplitude in unit scale


def disk(n: int, radius: float) -> Tensor:
    """(n, n) float32: 1 within `radius` pixels of the centre pixel (n // 2, n // 2), 0 outside; radius 0:
    all ones (no mask)."""
    if not radius:
        return torch.ones(n, n)
    steps = torch.arange(n, dtype=torch.float32) - n // 2
    return ((steps[:, None] ** 2 + steps[None, :] ** 2) <= radius**2).float()


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.1),
    )


class _EncoderDecoder(nn.Module):
    """(B, C, N, N) -> two (B, C, N, N) maps (amplitude and phase logits).

    No skip connections: diffraction space and real space are not pixel-aligned, so copying encoder
    features across would only leak detector structure into the object.
    """

    def __init__(self, channels: int, n_filters: int, depth: int) -> None:
        super().__init__()
        widths = [n_filters * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [_conv_block(channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)]
        )
        self.bottleneck = _conv_block(widths[depth - 1], widths[depth])
        self.up = nn.ModuleList([_conv_block(widths[i + 1], widths[i]) for i in reversed(range(depth))])
        self.amplitude_head = nn.Conv2d(n_filters, channels, 3, padding=1)
        self.phase_head = nn.Conv2d(n_filters, channels, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        for block in self.down:
            x = F.avg_pool2d(block(x), 2)  # (B, w_i, N/2^(i+1), ...)
        x = self.bottleneck(x)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.amplitude_head(x), self.phase_head(x)  # (B, C, N, N) each


class PtychoPINN(nn.Module):
    """Physics-informed network: diffraction (B, C, N, N) -> object patches -> predicted diffraction.

    probe: (N, N) or (M, N, N) complex64, M = config.probe_modes; stored as buffer `probe` (or parameter when
    config.learn_probe). intensity_scale: s from physics.intensity_scale(probe, nphotons), buffer.
    """

    def __init__(self, config: ModelConfig, probe: Tensor, intensity_scale: float) -> None:
        super().__init__()
        modes = physics.probe_modes(probe).to(torch.complex64)
        if modes.shape != (config.probe_modes, config.N, config.N):
            raise ModelConfigError(
                f"probe has shape {tuple(probe.shape)} but the config expects "
                f"({config.probe_modes}, {config.N}, {config.N}) (probe_modes, N, N)"
            )
        if not (math.isfinite(intensity_scale) and intensity_scale > 0):
            raise ModelConfigError(f"intensity_scale must be a finite number > 0, got {intensity_scale!r}")
        self.config = config
        if config.learn_probe:
            self.probe = nn.Parameter(modes.clone())
        else:
            self.register_buffer("probe", modes.clone())
        self.register_buffer("intensity_scale", torch.tensor(float(intensity_scale), dtype=torch.float32))
        # RMS unit-scale amplitude per detector pixel for |O| = 1 (Parseval): brings inputs to O(1)
        rms = math.sqrt(float(physics.intensity(modes).sum()) / config.N**2)
        self.register_buffer("input_rms", torch.tensor(rms, dtype=torch.float32))
        # not persistent: they follow from the config, and bundles written before these options still load
        self.register_buffer("support_mask", physics.central_window(config.N, config.support or config.N),
                             persistent=False)
        self.register_buffer("probe_mask", disk(config.N, config.probe_mask_radius), persistent=False)
        self.net = _EncoderDecoder(config.inputs_per_pass, config.n_filters, config.depth)
        amplitude_bias = (
            math.log(math.e - 1.0) if config.amplitude_activation is AmplitudeActivation.SOFTPLUS else 0.0
        )
        nn.init.constant_(self.net.amplitude_head.bias, amplitude_bias)  # start near |O| = 1
        nn.init.zeros_(self.net.phase_head.bias)

    def _check_inputs(self, diffraction: Tensor, coords_relative: Tensor, positions: Tensor | None) -> None:
        cfg = self.config
        if diffraction.ndim != 4 or diffraction.shape[1:] != (cfg.channels, cfg.N, cfg.N):
            raise ModelConfigError(
                f"diffraction must be (B, {cfg.channels}, {cfg.N}, {cfg.N}) for gridsize {cfg.gridsize} and "
                f"N {cfg.N}, got {tuple(diffraction.shape)}"
            )
        if coords_relative.shape != (diffraction.shape[0], cfg.channels, 2):
            raise ModelConfigError(
                f"coords_relative must be (B, C, 2) = {(diffraction.shape[0], cfg.channels, 2)}, "
                f"got {tuple(coords_relative.shape)}"
            )
        if positions is not None and positions.shape != coords_relative.shape:
            raise ModelConfigError(
                f"positions must be (B, C, 2) = {tuple(coords_relative.shape)}, the scan positions of the "
                f"patterns (coords_global), got {tuple(positions.shape)}"
            )

    def _object_from_logits(self, amplitude_logits: Tensor, phase_logits: Tensor) -> Tensor:
        cfg = self.config
        if cfg.amplitude_activation is AmplitudeActivation.SOFTPLUS:
            amplitude = F.softplus(amplitude_logits) + cfg.amplitude_floor
        else:
            amplitude = cfg.amplitude_max * torch.sigmoid(amplitude_logits) + cfg.amplitude_floor
        phase = math.pi * torch.tanh(phase_logits)
        obj = torch.polar(amplitude, phase)  # (B, C, N, N) complex64
        if not cfg.support:
            return obj
        fill = 1.0 if cfg.support_fill is SupportFill.VACUUM else 0.0
        return torch.where(self.support_mask, obj, torch.full_like(obj, fill))

    def physics_probe(self) -> Tensor:
        """The probe (M, N, N) complex64 the physics lights the patches with: the model's probe, times the
        disk of ModelConfig.probe_mask_radius when one is set."""
        probe = self.probe.to(torch.complex64)
        return probe * self.probe_mask if self.config.probe_mask_radius else probe

    def extract(self, obj: Tensor, positions: Tensor) -> Tensor:
        """The model's patches of a known object: (Ho, Wo) complex at positions (B, C, 2) -> (B, C, N, N), the
        windows the beam lit (physics.object_windows), what the network is trained to predict."""
        batch, channels = positions.shape[:2]
        windows = physics.object_windows(obj, positions.reshape(-1, 2), self.config.N)  # (B*C, N, N)
        return windows.reshape(batch, channels, self.config.N, self.config.N)

    def constrain(self, patches: Tensor, positions: Tensor) -> Tensor:
        """The overlap constraint: a group's C windows (B, C, N, N) merged at their whole-pixel offsets,
        positions (B, C, 2) absolute (overlap.merge_group)."""
        return self._merge(patches, physics.nearest_pixel(positions.detach().float()))

    def diffraction(self, patches: Tensor, positions: Tensor | None) -> Tensor:
        """Predicted amplitudes (B, C, N, N), unit scale, of windows (B, C, N, N) lit by the probe moved to
        positions (B, C, 2) (physics.beam_amplitude); positions None: the probe unmoved."""
        probe = self.physics_probe()
        if positions is None:
            return physics.diffraction_amplitude(patches, probe)
        return physics.beam_amplitude(patches, probe, positions.float())

    def _merge(self, patches: Tensor, window_coords: Tensor) -> Tensor:
        """Merge the C patches of each group where they overlap, at window_coords' offsets (overlap.merge_group)."""
        if patches.shape[1] == 1 or not self.config.overlap_constraint:
            return patches
        weights = merge_weights(self.physics_probe(), self.config.merge_weights)
        return merge_group(patches, window_coords, weights, interpolation=self.config.patch_interpolation)

    def _logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Amplitude and phase logits (B, C, N, N) of network inputs x (B, C, N, N): one pass over the group,
        or (Encoder.PATTERN) one per pattern, as a batch of B * C single-channel inputs."""
        if self.config.encoder is Encoder.GROUP:
            return self.net(x)
        batch, channels, n, _ = x.shape
        amplitude, phase = self.net(x.reshape(batch * channels, 1, n, n))
        return amplitude.reshape(x.shape), phase.reshape(x.shape)

    def object_patches(self, diffraction: Tensor, coords_relative: Tensor,
                       positions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(raw, constrained) object patches, each (B, C, N, N) complex64."""
        self._check_inputs(diffraction, coords_relative, positions)
        x = diffraction.float() / (self.intensity_scale * self.input_rms)
        amplitude_logits, phase_logits = self._logits(x)
        device = diffraction.device.type
        with torch.autocast(device_type=device, enabled=False):  # complex math and FFTs in float32
            raw = self._object_from_logits(amplitude_logits.float(), phase_logits.float())
            if positions is None:
                return raw, self._merge(raw, coords_relative.float())
            return raw, self.constrain(raw, positions)

    def forward(self, diffraction: Tensor, coords_relative: Tensor, positions: Tensor | None = None) -> ModelOutput:
        """diffraction (B, C, N, N) sqrt(counts), coords_relative and positions (B, C, 2) -> ModelOutput."""
        raw, constrained = self.object_patches(diffraction, coords_relative, positions)
        with torch.autocast(device_type=diffraction.device.type, enabled=False):
            pred = self.diffraction(constrained, positions)  # (B, C, N, N)
        return ModelOutput(object_patches=constrained, raw_object_patches=raw, pred_amplitude=pred)

    def loss(self, output: ModelOutput, diffraction: Tensor) -> Tensor:
        """Scalar: mean per pixel of the Poisson NLL on counts (or of the unit-scale amplitude MAE)."""
        return self.loss_of(output.pred_amplitude, diffraction)

    def loss_of(self, pred_amplitude: Tensor, diffraction: Tensor) -> Tensor:
        """The loss of any predicted unit-scale amplitude (broadcast to diffraction's shape), e.g. a flat
        object's: the trainer's reference points for its progress (train/plateau.py)."""
        measured = diffraction.float()
        if self.config.loss is LossKind.POISSON:
            values = physics.poisson_nll(pred_amplitude, measured, self.intensity_scale, eps=self.config.poisson_eps)
        else:
            values = physics.amplitude_mae(pred_amplitude, measured, self.intensity_scale)
        return values.mean()

    @torch.no_grad()
    def predict_object_patches(self, diffraction: Tensor, coords_relative: Tensor,
                               positions: Tensor | None = None) -> Tensor:
        """Inference: object patches (B, C, N, N) complex64 after the overlap constraint, no grad."""
        return self.object_patches(diffraction, coords_relative, positions)[1]
