"""The reconstruction figures show each reconstruction as it was scored."""
from __future__ import annotations

import numpy as np

from ptycho_torch.region import bounding_box
from ptycho_torch.simulate import make_object
from ptycho_torch.study.config import EvaluationSpec
from ptycho_torch.study.figures import scored_crop


def test_a_reconstruction_is_shown_with_the_ramp_offset_and_scale_that_were_scored_removed() -> None:
    truth = make_object((96, 96), seed=2, feature_px=5.0).astype(np.complex128)
    rows, cols = np.indices(truth.shape)
    ramp = 0.04 * cols + 0.03 * rows  # the data cannot tell it apart; the scores remove it
    recon = 0.6 * truth * np.exp(1j * (ramp - 2.0))
    recon[:, 80:] = np.nan  # not covered
    region = np.zeros(truth.shape, dtype=bool)
    region[10:90, 20:88] = True  # the scored region, wider than the coverage
    box = bounding_box(region)
    shown = scored_crop(recon, truth, region, EvaluationSpec(), box)
    assert shown.shape == truth[box].shape
    covered = np.isfinite(shown)
    np.testing.assert_array_equal(covered, (region & np.isfinite(recon))[box])
    phase_error = np.angle(shown[covered] * np.conj(truth[box][covered]))
    assert np.abs(phase_error).max() < 1e-9  # the phase shown is the truth's: ramp and offset removed
    np.testing.assert_allclose(np.abs(shown[covered]), np.abs(truth[box][covered]), rtol=1e-9)

    kept = scored_crop(recon, truth, region, EvaluationSpec(remove_ramp=False), box)  # scored with the ramp
    residual = kept[covered] * np.conj(truth[box][covered])
    assert np.ptp(np.angle(residual)) > 1.0
