"""The study's settings and labels: file-safe dose labels, and a resolved config that records a file by its
name and SHA256, never by a path."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ptycho_torch.study.config import ProbeSpec, dose_label
from ptycho_torch.study.load import parse_config


def test_dose_labels() -> None:
    assert [dose_label(d) for d in (1e3, 2500, 1e5, 0.5, 12345)] == ["1e3", "2.5e3", "1e5", "5e-1", "1.234e4"]


def test_the_resolved_config_names_a_file_by_its_name_never_its_folder() -> None:
    config = parse_config({})
    folder = Path("/data/of/some/machine")
    with_file = replace(config, data=replace(config.data, probe=ProbeSpec(str(folder / "probe64.npz"), "ab" * 32)))
    recorded = with_file.to_dict()
    assert recorded["data"]["probe"]["source"] == "probe64.npz"
    assert recorded["data"]["probe"]["sha256"] == "ab" * 32
    assert str(folder) not in repr(recorded)
    assert config.to_dict()["data"]["probe"]["source"] == "synthetic"
