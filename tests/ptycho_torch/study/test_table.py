"""metrics.csv round trip (an FRC not reached included) and the head-to-head rule (margins, ties, beating the
constant object)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from ptycho_torch.study.table import (
    COLUMNS,
    NOT_REACHED,
    Row,
    Score,
    _scores,
    csv_text,
    head_to_head,
    read_csv,
    time_to_image,
    training_behind,
)


def _row(method: str, gridsize: int, ssim: float, **changes: float) -> Row:
    values = {c: 1.0 for c in COLUMNS}
    values.update(dose=1e3, overlap="dense", overlap_fraction=0.7, gridsize=gridsize, method=method,
                  amplitude_ssim=ssim, phase_ssim=ssim, n_train=10, n_test=5, train_s=0.0, recon_s=0.0,
                  infer_s=0.0)
    values.update(changes)
    return Row(**values)  # type: ignore[arg-type]


def test_csv_round_trip_and_head_to_head(tmp_path: Path) -> None:
    rows = [_row("pinn", 1, 0.4, infer_s=0.5), _row("pinn", 2, 0.6, infer_s=0.7),
            _row("pinn_self", 1, 0.7, train_s=30.0, infer_s=0.5), _row("ml", 0, 0.5, recon_s=9.0),
            _row("ptychi-lsqml", 0, 0.45, recon_s=20.0), _row("constant", 0, 0.1)]
    path = tmp_path / "metrics.csv"
    path.write_text(csv_text(rows))
    assert read_csv(path) == rows
    head = head_to_head(rows)[0]
    ssim = head.scores[0]
    assert ssim.name == "amplitude_ssim" and ssim.constant == 0.1
    assert ssim.entries == (("PtychoPINN unseen", 0.6), ("PtychoPINN self", 0.7), ("Poisson ML", 0.5),
                            ("pty-chi LSQML", 0.45))  # each network arm by its best gridsize
    assert ssim.winner == "PtychoPINN self" and ssim.leaders == ("PtychoPINN self",)
    assert [(r.method, r.gridsize) for r in head.contenders] == [("pinn", 2), ("pinn_self", 1), ("ml", 0),
                                                                  ("ptychi-lsqml", 0)]
    # time to image: the unseen network's inference; the self-trained one's training too; a baseline's run
    assert [time_to_image(r) for r in head.contenders] == [0.7, 30.5, 9.0, 20.0]

    def winner(*scores: tuple[str, float]) -> Score:
        return head_to_head([_row(m, 1 if m.startswith("pinn") else 0, v) for m, v in scores])[0].scores[0]

    flat = winner(("pinn", 0.05), ("ml", 0.0), ("constant", 0.2))
    assert flat.winner == "neither"  # better than the baseline, but not better than a flat image
    close = winner(("pinn", 0.51), ("ml", 0.5), ("ptychi-lsqml", 0.2), ("constant", 0.2))
    assert close.winner == "tie" and close.leaders == ("PtychoPINN unseen", "Poisson ML")  # within 0.02 SSIM
    barely = winner(("pinn", 0.21), ("ml", 0.0), ("constant", 0.2))
    assert barely.winner == "neither"  # above the constant by less than the margin
    path.write_text("dose,method\n1,ml\n")
    with pytest.raises(ValueError, match="columns"):
        read_csv(path)


def test_an_frc_not_reached_is_written_as_such_and_read_back_as_nan(tmp_path: Path) -> None:
    report = {q: {"mae": 0.1, "psnr": 20.0, "ssim": 0.5, "frc_resolution": None} for q in ("amplitude", "phase")}
    scores = _scores(report)
    assert math.isnan(scores["amplitude_frc_cyc_per_px"]) and math.isnan(scores["phase_frc_cyc_per_px"])
    row = _row("ml", 0, 0.5, amplitude_frc_cyc_per_px=math.nan, phase_frc_cyc_per_px=0.25)
    text = csv_text([row])
    cells = text.splitlines()[1].split(",")
    assert cells[COLUMNS.index("amplitude_frc_cyc_per_px")] == NOT_REACHED and "nan" not in text
    assert cells[COLUMNS.index("phase_frc_cyc_per_px")] == "0.25"
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    back = read_csv(path)[0]
    assert math.isnan(back.amplitude_frc_cyc_per_px) and back.phase_frc_cyc_per_px == 0.25


def test_a_continued_networks_training_counts_the_training_of_its_start() -> None:
    assert training_behind({"seconds": 145.0, "started_from": "1e3_dense_gs1", "start_seconds": 298.0}) == 443.0
    assert training_behind({"seconds": 298.0, "started_from": None, "start_seconds": None}) == 298.0
    assert training_behind({"seconds": 298.0}) == 298.0  # a train.json written before continue_from existed
