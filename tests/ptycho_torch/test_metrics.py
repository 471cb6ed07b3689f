"""Metrics on known cases: identity, shifts, phase offsets and ramps, noise, PSNR's range, the baseline; the
options record and the metrics.json layout of the result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.ndimage import fourier_shift, gaussian_filter

from ptycho_torch.metrics import (
    FRC_THRESHOLD,
    Alignment,
    AlignOptions,
    Evaluation,
    MetricsError,
    align,
    constant_baseline,
    evaluate,
    psnr,
)

UNREGISTERED = AlignOptions(register=False)
NOTHING_REMOVED = AlignOptions(register=False, fit_scale=False, remove_ramp=False)

SIZE = 96


def _smooth(rng: np.random.Generator, sigma: float, size: int = SIZE) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / field.std()


def _truth(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A smooth complex object with features of a few pixels: amplitude 0.55..0.95, phase within +-0.8."""
    rng = np.random.default_rng(seed)
    amplitude = 0.75 + 0.2 * np.tanh(_smooth(rng, 2.0, size))
    phase = 0.8 * np.tanh(_smooth(rng, 2.0, size))
    return amplitude * np.exp(1j * phase)


def _noisy(truth: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return truth + sigma * (rng.standard_normal(truth.shape) + 1j * rng.standard_normal(truth.shape))


def _shifted(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    return np.fft.ifft2(fourier_shift(np.fft.fft2(image), shift))


def test_identical_images_give_ssim_one_and_infinite_psnr() -> None:
    truth = _truth()
    result = evaluate(truth, truth)
    for scores in (result.amplitude, result.phase):
        assert set(scores.to_dict()) == {"mae", "psnr", "ssim", "frc_resolution"}
        assert scores.psnr == math.inf
        assert scores.mae == 0.0
        assert scores.ssim == pytest.approx(1.0, abs=1e-12)
        assert scores.frc_resolution is None  # never crosses: not reached (no made-up Nyquist), flagged
    assert not result.frc.amplitude_reached and not result.frc.phase_reached
    assert result.registration.shift == (0.0, 0.0) and result.registration.applied
    assert result.registration.peak == pytest.approx(1.0, abs=1e-9)
    assert result.amplitude_scale == 1.0
    assert any("Nyquist" in note for note in result.notes)
    text = json.dumps(result.to_dict())  # JSON-safe; inf is written as Infinity
    assert "Infinity" in text


def test_the_record_keeps_the_metrics_json_layout() -> None:
    document = json.loads(json.dumps(evaluate(_noisy(_truth(), 0.05), _truth()).to_dict()))
    assert list(document) == ["amplitude", "phase", "registration", "amplitude_scale", "notes", "frc"]
    for quantity in ("amplitude", "phase"):
        assert list(document[quantity]) == ["mae", "psnr", "ssim", "frc_resolution"]
    assert list(document["registration"]) == ["shift", "applied", "reason", "found_shift", "peak_correlation",
                                              "max_shift_px"]
    assert list(document["frc"]) == ["unit", "threshold", "frequencies", "amplitude", "phase",
                                     "amplitude_reached", "phase_reached"]
    assert document["frc"]["unit"] == "cycles/pixel" and document["frc"]["threshold"] == FRC_THRESHOLD
    assert isinstance(document["notes"], list) and document["registration"]["shift"] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [({"upsample_factor": 0}, "upsample_factor must be an integer >= 1"),
     ({"upsample_factor": 2.5}, "upsample_factor must be an integer"),
     ({"register": "no"}, "register must be true or false"),
     ({"fit_scale": 1}, "fit_scale must be true or false")],
)
def test_align_options_are_checked_when_made(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(MetricsError, match=needle):
        AlignOptions(**changes)  # type: ignore[arg-type]


def test_known_subpixel_shift_is_recovered() -> None:
    truth = _truth(seed=2)
    recon = _shifted(truth, (2.3, -1.7))
    result = evaluate(recon, truth)
    dy, dx = result.registration.shift
    assert abs(dy + 2.3) < 0.1 and abs(dx - 1.7) < 0.1  # the shift applied to recon undoes the offset
    assert result.amplitude.ssim > 0.99 and result.phase.ssim > 0.99
    unregistered = evaluate(recon, truth, options=UNREGISTERED)
    assert unregistered.amplitude.ssim < result.amplitude.ssim - 0.2


def test_global_phase_offset_leaves_phase_metrics_unchanged() -> None:
    truth = _truth(seed=3)
    recon = _noisy(truth, 0.03)
    plain = evaluate(recon, truth)
    rotated = evaluate(recon * np.exp(1.3j), truth)
    for key in ("mae", "psnr", "ssim", "frc_resolution"):
        for quantity in ("phase", "amplitude"):
            before, after = getattr(getattr(plain, quantity), key), getattr(getattr(rotated, quantity), key)
            if before is None:  # an FRC not reached: it must stay not reached
                assert after is None, (quantity, key)
            else:
                assert after == pytest.approx(before, rel=1e-9)
    def offset(result: Evaluation) -> float:
        note = next(n for n in result.notes if n.startswith("global phase offset removed: "))
        return float(note.split(": ")[1].split()[0])

    assert offset(rotated) == pytest.approx(offset(plain) - 1.3, abs=2e-3)  # notes round to 4 digits


def test_phase_ramp_is_removed_only_when_asked() -> None:
    truth = _truth(seed=4)
    rows, cols = np.indices(truth.shape)
    recon = _noisy(truth, 0.02) * np.exp(1j * (0.05 * cols - 0.03 * rows + 0.4))
    with_ramp_removed = evaluate(recon, truth)
    kept = evaluate(recon, truth, options=AlignOptions(remove_ramp=False))
    assert with_ramp_removed.phase.ssim > 0.9
    assert kept.phase.ssim < with_ramp_removed.phase.ssim - 0.3
    assert kept.phase.mae > 5 * with_ramp_removed.phase.mae


@pytest.mark.parametrize("blur", [1.0, 4.0])
def test_the_ramp_is_found_under_pixel_scale_phase_noise(blur: float) -> None:
    """A blurred reconstruction with 1 rad of pixel-scale phase noise (as a network's can be): the mean
    neighbour increment, the estimator used before, was off by 4e-3 to 7e-3 rad/px here (1.5 to 2.5 rad
    across the field); the coherence maximum finds the ramp within 1e-4 rad/px."""
    rng = np.random.default_rng(7)
    truth = _truth(seed=3, size=400)
    rows, cols = np.indices(truth.shape)
    blurred = gaussian_filter(truth.real, blur) + 1j * gaussian_filter(truth.imag, blur)
    recon = blurred * np.exp(1j * (rng.normal(0.0, 1.0, truth.shape) - 0.01 * cols + 0.02 * rows))
    mask = np.zeros(truth.shape, bool)
    mask[20:380, 20:380] = True
    notes = evaluate(recon, truth, mask=mask, options=UNREGISTERED).notes
    ramp = next(note for note in notes if note.startswith("linear phase ramp removed"))
    gx, gy = (float(word) for word in ramp.replace(",", "").split() if word[0] in "-0123456789")
    assert abs(gx - 0.01) < 1e-4 and abs(gy + 0.02) < 1e-4, ramp


def test_removing_the_ramp_never_lowers_the_coherence_with_the_truth() -> None:
    """No ramp to find (phase noise only): whatever ramp is removed, the reconstruction agrees with the
    truth at least as well as before (the coherence |sum truth conj(recon)| over the region)."""
    rng = np.random.default_rng(8)
    truth = _truth(seed=5, size=300)
    recon = truth * np.exp(1j * rng.normal(0.0, 1.2, truth.shape))
    aligned = align(recon, truth, options=AlignOptions(register=False, fit_scale=False))
    kept = align(recon, truth, options=NOTHING_REMOVED)
    def coherence(fit: Alignment) -> float:
        return float(abs(np.nansum(fit.truth * np.conj(fit.recon))))

    assert coherence(aligned) >= coherence(kept) * (1 - 1e-9)


def test_psnr_uses_the_truths_range_not_a_fixed_peak() -> None:
    rng = np.random.default_rng(5)
    truth = gaussian_filter(rng.random((64, 64)), 2.0)
    truth = (truth - truth.min()) / (truth.max() - truth.min())  # exactly [0, 1]
    recon = truth + 0.01 * rng.standard_normal(truth.shape)
    result = evaluate(recon, truth, options=NOTHING_REMOVED)
    mse = np.mean((np.abs(recon) - truth) ** 2)
    assert result.amplitude.psnr == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-9)
    assert 35 < result.amplitude.psnr < 45  # a 255 peak would claim about 88 dB
    half = evaluate(0.5 * recon, 0.5 * truth, options=NOTHING_REMOVED)
    assert half.amplitude.psnr == pytest.approx(result.amplitude.psnr, rel=1e-9)
    assert psnr([1.0, 2.0], [1.0, 2.5], data_range=2.0) == pytest.approx(10 * np.log10(4 / 0.125))


def test_pure_noise_has_frc_below_threshold_at_mid_and_high_frequencies() -> None:
    rng = np.random.default_rng(1006)  # not _truth's seed: that stream's first draws are the truth's own fields
    truth = _truth(seed=6, size=256)  # rings of a few hundred pixels: chance correlation ~ 0.06
    noise = rng.standard_normal(truth.shape) + 1j * rng.standard_normal(truth.shape)
    result = evaluate(noise, truth)
    frequencies = np.array(result.frc.frequencies)
    for quantity in ("amplitude", "phase"):
        curve = np.array(getattr(result.frc, quantity))
        band = curve[frequencies >= 0.15]
        assert np.mean(band < FRC_THRESHOLD) > 0.9 and abs(band.mean()) < 0.05
        assert getattr(result.frc, f"{quantity}_reached")
        assert getattr(result, quantity).frc_resolution < 0.1


def test_constant_object_scores_well_below_a_good_reconstruction() -> None:
    truth = _truth(seed=9)
    good = evaluate(_noisy(truth, 0.02), truth)
    baseline = constant_baseline(truth)
    assert good.amplitude.ssim > 0.9
    assert baseline.amplitude.ssim < good.amplitude.ssim - 0.5
    assert baseline.amplitude.psnr < good.amplitude.psnr - 10
    assert baseline.registration.shift == (0.0, 0.0) and not baseline.registration.applied
    assert baseline.notes[0].startswith("constant object |") and set(baseline.to_dict()) == set(good.to_dict())


def test_only_the_covered_region_counts() -> None:
    truth = _truth(seed=10)
    recon = _noisy(truth, 0.02)
    recon_nan = recon.copy()
    recon_nan[:20, :] = np.nan  # not scanned
    recon_garbage = recon.copy()
    recon_garbage[:20, :] = 50.0
    mask = np.ones(truth.shape, dtype=bool)
    mask[:20, :] = False
    by_nan = evaluate(recon_nan, truth, options=UNREGISTERED)
    by_mask = evaluate(recon_garbage, truth, mask=mask, options=UNREGISTERED)
    assert by_nan.amplitude == by_mask.amplitude and by_nan.phase == by_mask.phase
    everything = evaluate(recon_garbage, truth, options=UNREGISTERED)
    assert everything.amplitude.mae > 10 * by_mask.amplitude.mae


def test_a_mask_the_reconstruction_does_not_fill_is_said_with_how_much_was_scored() -> None:
    """Pixels of the mask where the reconstruction is NaN are not scored; the notes say how many there were,
    since the pixels left (often those nearest the scan positions) may flatter the scores."""
    truth = _truth(seed=11)
    recon = _noisy(truth, 0.02)
    mask = np.zeros(truth.shape, dtype=bool)
    mask[10:90, 10:90] = True
    holed = recon.copy()
    holed[30:50, 30:50] = np.nan  # 400 of the mask's 6,400 pixels
    holed[:5, :] = np.nan  # outside the mask: not the mask's concern
    said = [n for n in evaluate(holed, truth, mask=mask, options=UNREGISTERED).notes if "of the mask's" in n]
    assert said == [("the reconstruction covers 6000 of the mask's 6400 pixels (93.8%); the other 400 are not "
                     "scored: compare reconstructions on the pixels they all cover")]
    assert not [n for n in evaluate(recon, truth, mask=mask, options=UNREGISTERED).notes if "of the mask's" in n]
    assert not [n for n in evaluate(holed, truth, options=UNREGISTERED).notes if "of the mask's" in n]


def test_amplitude_scale_is_fitted_and_reported() -> None:
    truth = _truth(seed=11)
    recon = 2.5 * truth
    fitted = evaluate(recon, truth)
    assert fitted.amplitude_scale == pytest.approx(0.4, rel=1e-9)
    assert fitted.amplitude.psnr > 100
    assert any("amplitude scaled by 0.4" in note for note in fitted.notes)
    unfitted = evaluate(recon, truth, options=AlignOptions(fit_scale=False))
    assert unfitted.amplitude_scale == 1.0
    assert unfitted.amplitude.mae == pytest.approx(1.5 * np.abs(truth).mean(), rel=1e-6)
    assert unfitted.phase.mae < 1e-12  # phase is untouched by an amplitude scale


def test_bad_inputs_raise_clear_errors() -> None:
    truth = _truth(seed=12)
    with pytest.raises(MetricsError, match="same shape"):
        evaluate(truth[:, :50], truth)
    with pytest.raises(MetricsError, match="2-D"):
        evaluate(truth[None], truth[None])
    with pytest.raises(MetricsError, match="no covered pixels"):
        evaluate(np.full(truth.shape, np.nan), truth)
    with pytest.raises(MetricsError, match="mask shape"):
        evaluate(truth, truth, mask=np.ones((3, 3), dtype=bool))
    small = np.zeros(truth.shape, dtype=bool)
    small[10:14, 10:30] = True
    with pytest.raises(MetricsError, match="at least 7x7"):
        evaluate(truth, truth, mask=small)
    broken = truth.copy()
    broken[5, 5] = np.nan
    with pytest.raises(MetricsError, match="truth has NaN"):
        evaluate(truth, broken)
    with pytest.raises(MetricsError, match="numeric"):
        evaluate([["a", "b"]], truth)
    with pytest.raises(MetricsError, match="mask shape"):
        constant_baseline(truth, np.ones((3, 3), dtype=bool))
    with pytest.raises(MetricsError, match="upsample_factor"):
        evaluate(truth, truth, options=AlignOptions(upsample_factor=0))


def test_align_returns_the_reconstruction_as_it_was_scored() -> None:
    truth = _truth(seed=13)
    rows, cols = np.indices(truth.shape)
    ramp = 0.06 * cols - 0.04 * rows  # not determined by the data, removed before scoring
    recon = 1.8 * truth * np.exp(1j * (ramp + 1.1))
    mask = np.zeros(truth.shape, dtype=bool)
    mask[12:80, 20:90] = True
    aligned = align(recon, truth, mask=mask, options=UNREGISTERED)
    assert aligned.box == (slice(12, 80), slice(20, 90)) and aligned.region.all()
    assert aligned.scale == pytest.approx(1 / 1.8, rel=1e-9)
    phase_error = np.angle(aligned.recon * np.conj(truth[aligned.box]))
    assert np.abs(phase_error).max() < 1e-9  # ramp and global offset gone: the phase shown is the truth's
    np.testing.assert_allclose(np.abs(aligned.recon), np.abs(truth[aligned.box]), rtol=1e-9)
    np.testing.assert_array_equal(aligned.truth, truth[aligned.box])
    scored = evaluate(recon, truth, mask=mask, options=UNREGISTERED)
    assert scored.amplitude_scale == aligned.scale and scored.phase.mae < 1e-9

    # as scored without ramp removal
    kept = align(recon, truth, mask=mask, options=AlignOptions(register=False, remove_ramp=False))
    residual = kept.recon * np.conj(truth[kept.box])  # only a global offset removed: the ramp stays
    np.testing.assert_allclose(np.angle(residual[:, 1:] * np.conj(residual[:, :-1])), 0.06, atol=1e-9)
    np.testing.assert_allclose(np.angle(residual[1:, :] * np.conj(residual[:-1, :])), -0.04, atol=1e-9)


def test_align_applies_the_registration_shift_and_places_the_crop_in_the_frame() -> None:
    truth = _truth(seed=14)
    recon = _shifted(truth, (2.0, -3.0))
    aligned = align(recon, truth)
    assert aligned.shift == pytest.approx((-2.0, 3.0), abs=0.05)
    assert evaluate(recon, truth).registration.shift == aligned.shift
    inner = aligned.region
    assert np.abs(aligned.recon[inner] - truth[aligned.box][inner]).max() < 0.05
    placed = aligned.in_frame(truth.shape)
    assert placed.shape == truth.shape and np.isnan(placed[0, 0])
    np.testing.assert_array_equal(placed[aligned.box], aligned.recon)
