"""PtychoPINN: shapes, activations, the overlap constraint, gradients, a short training, config round-trip."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptycho_torch import physics
from ptycho_torch.model import (
    AmplitudeActivation,
    Encoder,
    LossKind,
    ModelConfig,
    ModelConfigError,
    ModelOutput,
    PtychoPINN,
)
from ptycho_torch.overlap import MergeWeights, merge_weights
from ptycho_torch.physics import Interpolation


def _gaussian_probe(n: int, sigma: float, modes: int = 1) -> torch.Tensor:
    yy, xx = np.mgrid[:n, :n] - n // 2
    base = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    stack = [base * np.exp(1j * 0.3 * m * xx / n) * (0.5**m) for m in range(modes)]
    return torch.tensor(np.stack(stack), dtype=torch.complex64)


def _model(gridsize: int = 1, n: int = 16, modes: int = 1, **overrides: Any) -> PtychoPINN:
    torch.manual_seed(0)
    config = ModelConfig(N=n, gridsize=gridsize, n_filters=8, depth=2, probe_modes=modes, **overrides)
    probe = _gaussian_probe(n, n / 6, modes)
    return PtychoPINN(config, probe, physics.intensity_scale(probe, 1e4))


def _batch(model: PtychoPINN, batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    c, n = model.config.channels, model.config.N
    diffraction = torch.rand(batch, c, n, n, generator=gen) * 30
    offsets = (
        torch.tensor([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]])[:c] if c > 1 else torch.zeros(1, 2)
    )
    coords = offsets.expand(batch, c, 2) + 0.3 * torch.randn(batch, c, 2, generator=gen) * (c > 1)
    return diffraction, coords.contiguous()


@pytest.mark.parametrize("gridsize", [1, 2])
def test_forward_shapes_and_dtypes(gridsize: int) -> None:
    model = _model(gridsize)
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    assert isinstance(out, ModelOutput)
    c = gridsize**2
    assert out.object_patches.shape == (3, c, 16, 16) and out.object_patches.dtype == torch.complex64
    assert out.raw_object_patches.shape == (3, c, 16, 16) and out.raw_object_patches.dtype == torch.complex64
    assert out.pred_amplitude.shape == (3, c, 16, 16) and out.pred_amplitude.dtype == torch.float32
    predicted = model.predict_object_patches(diffraction, coords)
    torch.testing.assert_close(predicted, out.object_patches)
    assert not predicted.requires_grad


@pytest.mark.parametrize("activation", list(AmplitudeActivation))
def test_amplitude_is_positive_and_phase_within_pi(activation: AmplitudeActivation) -> None:
    model = _model(1, amplitude_activation=activation)
    with torch.no_grad():  # drive the heads to extremes so both bounds are exercised
        model.net.amplitude_head.bias.fill_(-50.0)
        model.net.phase_head.bias.fill_(50.0)
    diffraction, coords = _batch(model)
    patches = model(diffraction, coords).raw_object_patches
    assert (patches.abs() >= model.config.amplitude_floor * 0.999).all()
    assert (patches.angle().abs() <= math.pi).all()
    assert torch.isfinite(model.loss(model(diffraction, coords), diffraction))


def test_pred_amplitude_is_the_physics_of_the_object_patches() -> None:
    model = _model(2, modes=2)
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    expected = physics.diffraction_amplitude(out.object_patches, model.probe)
    torch.testing.assert_close(out.pred_amplitude, expected)


def test_overlap_constraint_makes_patches_agree_on_shared_pixels() -> None:
    model = _model(2)
    diffraction, _ = _batch(model, batch=2)
    offsets = torch.tensor([[-3.0, -2.0], [3.0, -2.0], [-3.0, 2.0], [3.0, 2.0]])  # (x, y), integer
    coords = offsets.expand(2, 4, 2).contiguous()
    out = model(diffraction, coords)
    raw, shared = out.raw_object_patches, out.object_patches
    # patch 0 pixel (r, c) and patch 1 pixel (r, c - 6) see the same object pixel (dx = 6)
    assert (raw[:, 0, :, 6:] - raw[:, 1, :, :-6]).abs().max() > 1e-3  # the network alone disagrees
    torch.testing.assert_close(shared[:, 0, :, 6:], shared[:, 1, :, :-6])
    # patch 0 and patch 3 overlap with dx = 6, dy = 4
    torch.testing.assert_close(shared[:, 0, 4:, 6:], shared[:, 3, :-4, :-6])
    # a pixel seen only by patch 0 keeps its own value
    torch.testing.assert_close(shared[:, 0, 0, 0], raw[:, 0, 0, 0])
    # and the merge really is the probe-weighted mean of the contributions
    rows, cols = [5, 5, 1, 1], [8, 2, 8, 2]
    weights = merge_weights(model.probe, MergeWeights.PROBE)[rows, cols]
    expected = (raw[:, [0, 1, 2, 3], rows, cols] * weights).sum(dim=1) / weights.sum()
    torch.testing.assert_close(shared[:, 0, 5, 8], expected)


def test_uniform_merge_weights_give_the_plain_mean_of_the_contributions() -> None:
    model = _model(2, merge_weights="uniform")
    diffraction, _ = _batch(model, batch=2)
    coords = torch.tensor([[-3.0, -2.0], [3.0, -2.0], [-3.0, 2.0], [3.0, 2.0]]).expand(2, 4, 2).contiguous()
    out = model(diffraction, coords)
    raw, shared = out.raw_object_patches, out.object_patches
    torch.testing.assert_close(shared[:, 0, :, 6:], shared[:, 1, :, :-6])
    torch.testing.assert_close(shared[:, 0, 0, 0], raw[:, 0, 0, 0])
    torch.testing.assert_close(
        shared[:, 0, 5, 8], raw[:, [0, 1, 2, 3], [5, 5, 1, 1], [8, 2, 8, 2]].mean(dim=1)
    )


def test_overlap_constraint_can_be_switched_off() -> None:
    model = _model(2, overlap_constraint=False)
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    assert torch.equal(out.object_patches, out.raw_object_patches)


@pytest.mark.parametrize("learn_probe", [False, True])
def test_gradients_reach_every_parameter(learn_probe: bool) -> None:
    model = _model(2, learn_probe=learn_probe)
    diffraction, coords = _batch(model)
    model.loss(model(diffraction, coords), diffraction).backward()
    names = [name for name, _ in model.named_parameters()]
    assert ("probe" in names) == learn_probe
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(torch.view_as_real(param.grad) if param.is_complex() else param.grad).all(), (
            name
        )
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("loss", list(LossKind))
def test_loss_is_finite_scalar_even_for_zero_counts(loss: LossKind) -> None:
    model = _model(1, loss=loss)
    _, coords = _batch(model)
    zeros = torch.zeros(3, 1, 16, 16)
    out = model(zeros, coords)
    value = model.loss(out, zeros)
    assert value.ndim == 0 and torch.isfinite(value)
    if loss is LossKind.MAE:
        assert value.item() == pytest.approx(out.pred_amplitude.mean().item())


def test_loss_is_the_mean_poisson_nll_on_counts() -> None:
    model = _model(1)
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    s = float(model.intensity_scale)
    rate = (out.pred_amplitude * s) ** 2
    expected = (rate - diffraction**2 * torch.log(rate + model.config.poisson_eps)).mean()
    torch.testing.assert_close(model.loss(out, diffraction), expected)


def test_cpu_bfloat16_autocast_keeps_physics_in_float32() -> None:
    model = _model(2)
    diffraction, coords = _batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(diffraction, coords)
        loss = model.loss(out, diffraction)
    assert out.object_patches.dtype == torch.complex64 and out.pred_amplitude.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()


def _synthetic_batch(n: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Counts-scale diffraction of a smooth random object under a Gaussian probe, with Poisson noise."""
    rng = np.random.default_rng(seed)
    side = 3 * n
    amplitude = 0.75 + 0.25 * np.tanh(8 * gaussian_filter(rng.standard_normal((side, side)), 3))
    phase = np.tanh(8 * gaussian_filter(rng.standard_normal((side, side)), 3))
    obj = torch.tensor(amplitude * np.exp(1j * phase), dtype=torch.complex64)
    probe = _gaussian_probe(n, 3.0)
    s = physics.intensity_scale(probe, 1e4)
    centres = torch.tensor(rng.uniform(n * 0.75, side - n * 0.75, (count, 2)), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    counts = torch.poisson((physics.forward(obj, probe[0], centres) * s) ** 2, generator=gen)
    return counts.sqrt().unsqueeze(1), probe, s


@pytest.mark.slow
def test_short_training_reduces_the_loss_clearly() -> None:
    n = 16
    diffraction, probe, s = _synthetic_batch(n, count=8, seed=1)
    torch.manual_seed(0)
    model = PtychoPINN(ModelConfig(N=n, n_filters=8, depth=2), probe, s)
    coords = torch.zeros(8, 1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    counts = diffraction**2
    # the Poisson NLL without the counts-only term is negative; judge the excess over its minimum (rate = k)
    minimum = float(physics.poisson_nll_counts(counts, counts).mean())
    excess = []
    for _ in range(50):
        loss = model.loss(model(diffraction, coords), diffraction)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        excess.append(loss.item() - minimum)
    assert all(math.isfinite(e) and e > 0 for e in excess)
    assert excess[-1] < 0.7 * excess[0], excess


def test_config_round_trips_through_json() -> None:
    config = ModelConfig(
        N=32,
        gridsize=2,
        n_filters=12,
        depth=3,
        probe_modes=3,
        loss="mae",
        amplitude_activation="sigmoid",
        learn_probe=True,
        patch_interpolation="fourier",
    )
    text = json.dumps(config.to_dict())
    again = ModelConfig.from_dict(json.loads(text))
    assert again == config
    assert again.loss is LossKind.MAE and again.patch_interpolation is Interpolation.FOURIER
    assert ModelConfig.from_dict({}) == ModelConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"N": 64, "n_filter": 8}, r"unknown model config key\(s\) \['n_filter'\]"),
        ({"loss": "l2"}, "ModelConfig.loss = 'l2' is not a known choice; choose one of 'poisson', 'mae'"),
        ({"N": 60, "depth": 3}, "divisible by 2\\*\\*depth = 8"),
        ({"gridsize": 0}, "gridsize must be an integer >= 1"),
        ({"n_filters": True}, "n_filters must be an integer"),
        ({"amplitude_floor": 0.0}, "amplitude_floor must be a finite number > 0"),
        ({"learn_probe": "yes"}, "learn_probe must be true or false"),
    ],
)
def test_config_rejects_bad_values_with_clear_messages(data: dict[str, object], message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig.from_dict(data)


def test_model_rejects_mismatched_probe_and_inputs() -> None:
    config = ModelConfig(N=16, depth=2, probe_modes=2)
    with pytest.raises(ModelConfigError, match=r"expects \(2, 16, 16\)"):
        PtychoPINN(config, _gaussian_probe(16, 3.0, modes=1), 1.0)
    model = _model(2)
    with pytest.raises(ModelConfigError, match=r"diffraction must be \(B, 4, 16, 16\)"):
        model(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 2))
    with pytest.raises(ModelConfigError, match="coords_relative"):
        model(torch.zeros(2, 4, 16, 16), torch.zeros(2, 4))


def test_probe_and_scale_live_in_the_state_dict() -> None:
    model = _model(1)
    state = model.state_dict()
    assert state["probe"].dtype == torch.complex64 and state["probe"].shape == (1, 16, 16)
    assert float(state["intensity_scale"]) == pytest.approx(physics.intensity_scale(model.probe, 1e4))
    clone = PtychoPINN(model.config, torch.ones(1, 16, 16, dtype=torch.complex64), 2.0)
    clone.load_state_dict(state)
    diffraction, coords = _batch(model)
    torch.testing.assert_close(
        clone(diffraction, coords).pred_amplitude, model(diffraction, coords).pred_amplitude
    )


@pytest.mark.parametrize(("fill", "value"), [("vacuum", 1.0), ("zero", 0.0)])
def test_support_keeps_the_network_inside_its_central_window(fill: str, value: float) -> None:
    model = _model(1, support=8, support_fill=fill)
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    patches = out.raw_object_patches  # (3, 1, 16, 16): the window is rows and columns 4..11
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[4:12, 4:12] = False
    assert torch.equal(patches[..., outside], torch.full_like(patches[..., outside], value))
    assert (patches[..., 4:12, 4:12] - value).abs().min() > 0  # inside: the network's own values
    # nothing the network says outside the window reaches the loss
    model.loss(out, diffraction).backward()
    grad_logits = torch.zeros(3, 1, 16, 16, requires_grad=True)
    amplitude, phase = model.net(diffraction / (model.intensity_scale * model.input_rms))
    obj = model._object_from_logits(amplitude + grad_logits, phase + grad_logits)
    obj.abs().sum().backward()
    assert grad_logits.grad[..., outside].abs().max() == 0
    assert grad_logits.grad[..., ~outside].abs().min() > 0


def test_the_whole_patch_is_the_default_support() -> None:
    diffraction, coords = _batch(_model(1))
    torch.testing.assert_close(_model(1, support=16)(diffraction, coords).pred_amplitude,
                               _model(1)(diffraction, coords).pred_amplitude)


def test_probe_mask_lights_the_patches_with_the_probe_inside_a_disk_only() -> None:
    model = _model(1, probe_mask_radius=4.0)
    plain = _model(1)
    probe = model.physics_probe()
    yy, xx = np.mgrid[:16, :16] - 8
    inside = torch.from_numpy(xx**2 + yy**2 <= 16)
    assert torch.equal(probe[0][~inside], torch.zeros_like(probe[0][~inside]))
    torch.testing.assert_close(probe[0][inside], plain.probe[0][inside])
    assert torch.equal(model.probe, plain.probe)  # the stored probe is unchanged; only the physics masks it
    diffraction, coords = _batch(model)
    out = model(diffraction, coords)
    expected = physics.diffraction_amplitude(out.object_patches, plain.probe * inside)
    torch.testing.assert_close(out.pred_amplitude, expected)


def test_central_merge_is_the_mean_of_the_central_windows_covering_a_pixel() -> None:
    model = _model(2, merge_weights="central")  # N 16: central windows rows and columns 4..11
    diffraction, _ = _batch(model, batch=2)
    coords = torch.tensor([[-3.0, -2.0], [3.0, -2.0], [-3.0, 2.0], [3.0, 2.0]]).expand(2, 4, 2).contiguous()
    out = model(diffraction, coords)
    raw, shared = out.raw_object_patches, out.object_patches
    # patch 0 pixel (r, c) is patch 1's (r, c - 6), patch 2's (r - 4, c), patch 3's (r - 4, c - 6)
    # (8, 10): in the central windows of all four: patches 0 (8, 10), 1 (8, 4), 2 (4, 10) and 3 (4, 4)
    expected = (raw[:, 0, 8, 10] + raw[:, 1, 8, 4] + raw[:, 2, 4, 10] + raw[:, 3, 4, 4]) / 4
    torch.testing.assert_close(shared[:, 0, 8, 10], expected)
    # (8, 9): in those of patches 0 (8, 9) and 2 (4, 9), not of 1 (8, 3) nor 3 (4, 3)
    torch.testing.assert_close(shared[:, 0, 8, 9], (raw[:, 0, 8, 9] + raw[:, 2, 4, 9]) / 2)
    # (5, 13): outside patch 0's central window, inside patch 1's (5, 7) only
    torch.testing.assert_close(shared[:, 0, 5, 13], raw[:, 1, 5, 7], rtol=1e-6, atol=1e-6)
    # (0, 0): in no central window (patch 0's only): its own value
    torch.testing.assert_close(shared[:, 0, 0, 0], raw[:, 0, 0, 0])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"N": 16, "depth": 2, "support": 17}, "support = 17 is wider than the patch"),
        ({"support": -1}, "support .* must be an integer >= 0"),
        ({"support_fill": "one"}, "support_fill = 'one' is not a known choice"),
        ({"probe_mask_radius": -2}, "probe_mask_radius .* must be a finite number >= 0"),
        ({"merge_weights": "middle"}, "merge_weights = 'middle' is not a known choice; choose one of "
                                      + "'probe', 'uniform', 'central'"),
    ],
)
def test_reference_options_reject_bad_values(data: dict[str, object], message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig.from_dict(data)


def test_a_model_saved_before_the_reference_options_still_loads() -> None:
    model = _model(1, support=8, probe_mask_radius=4.0)
    state = model.state_dict()
    assert "support_mask" not in state and "probe_mask" not in state  # they follow from the config
    clone = _model(1, support=8, probe_mask_radius=4.0)
    clone.load_state_dict(state)


def test_a_per_pattern_encoder_reads_each_pattern_alone_with_the_gridsize_1_network() -> None:
    group = _model(2, encoder="pattern", overlap_constraint=False)
    single = _model(1)
    assert group.config.encoder is Encoder.PATTERN
    group.load_state_dict(single.state_dict())  # the same weights: one network, shared by the C patterns
    diffraction, coords = _batch(group)
    raw = group(diffraction, coords).raw_object_patches  # (3, 4, N, N)
    for channel in range(4):
        alone = single(diffraction[:, channel : channel + 1], torch.zeros(3, 1, 2)).raw_object_patches
        torch.testing.assert_close(raw[:, channel : channel + 1], alone)
    changed = diffraction.clone()
    changed[:, 1] *= 3.0
    again = group(changed, coords).raw_object_patches
    torch.testing.assert_close(again[:, [0, 2, 3]], raw[:, [0, 2, 3]])  # no pattern sees another
    assert not torch.allclose(again[:, 1], raw[:, 1])


def test_the_group_encoder_mixes_a_groups_patterns_and_stays_the_default() -> None:
    model = _model(2, overlap_constraint=False)
    assert model.config.encoder is Encoder.GROUP
    diffraction, coords = _batch(model)
    changed = diffraction.clone()
    changed[:, 1] *= 3.0
    assert not torch.allclose(model(changed, coords).raw_object_patches[:, 0],
                              model(diffraction, coords).raw_object_patches[:, 0])
    with pytest.raises(ModelConfigError, match="encoder = 'shared' is not a known choice; choose one of "
                                               "'group', 'pattern'"):
        ModelConfig.from_dict({"encoder": "shared"})
