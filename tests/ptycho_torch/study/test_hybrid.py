"""The study's hybrid arm "network + ML" (config `hybrid:`): loaded and validated, run after the network it
starts from, scored and tabled like a baseline, its start recorded by name and SHA256."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptycho_torch.cli import main
from ptycho_torch.errors import StudyConfigError
from ptycho_torch.study.load import PRESET_DIR, parse_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/ptycho_torch/conftest.py


def tiny(**hybrid: Any) -> dict[str, Any]:
    """The smoke preset cut to one dose, one overlap, one network (gridsize 1, arm self), plus a hybrid."""
    raw = yaml.safe_load((PRESET_DIR / "smoke.yaml").read_text())
    raw.update(doses=[1.0e5], overlaps={"dense": 0.7}, gridsizes=[1], arms=["self"], hybrid=hybrid)
    raw["data"]["object_size"] = 128  # enough positions for one dense gridsize-1 arm
    return raw


def test_the_hybrid_arm_runs_after_its_network_and_is_tabled(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny(method="ml", iterations=5, device="cpu", holdout="pixels")))
    out = tmp_path / "study"
    assert main(["study", "--config", str(config_file), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "hybrid" in printed and "1e5_dense_pinn_self_ml" in printed
    with open(out / "metrics.csv", newline="") as handle:
        methods = [line["method"] for line in csv.DictReader(handle)]
    assert methods == ["pinn_self", "ml", "pinn_self_ml", "constant"]
    network = out / "runs" / "1e5_dense_gs1_self" / "recon.npz"
    record = json.loads((out / "runs" / "1e5_dense_pinn_self_ml" / "baseline.json").read_text())
    assert record["init"]["name"] == "recon.npz"
    assert record["init"]["sha256"] == hashlib.sha256(network.read_bytes()).hexdigest()
    assert record["init"]["amplitude_scale"] > 0 and str(tmp_path) not in json.dumps(record)
    assert record["holdout"]["fraction"] == 0.1 and len(record["holdout_deviance"]) == record["iterations"]
    assert record["holdout"]["kind"] == "pixels" and record["holdout"]["n_patterns"] == record["n_patterns"]
    manifest = json.loads((out / "manifest.json").read_text())["units"]
    assert "runs/1e5_dense_gs1_self/recon.npz" in manifest["hybrid/1e5_dense_pinn_self_ml"]["upstream"]
    report = (out / "comparison.md").read_text()
    assert "PtychoPINN self + Poisson ML" in report
    assert ("5 iterations at most, batch 64, the start's amplitude scale fitted to the counts; it returns the "
            "iterate that best fits a held-out 0.1 of every pattern's detector pixels") in report
    resolved = yaml.safe_load((out / "study.yaml").read_text())
    assert resolved["hybrid"]["arm"] == "self" and resolved["hybrid"]["iterations"] == 5


def test_the_resolved_hybrid_section_loads_back_the_same() -> None:
    config = parse_config(tiny(arm="self", iterations=7, holdout_fraction=0.2, patience=3))
    assert config.hybrid is not None and config.hybrid.method == "pinn_self_ml"
    assert config.hybrid.reconstruction.iterations == 7 and config.hybrid.reconstruction.patience == 3
    assert parse_config(config.to_dict()).hybrid == config.hybrid
    assert parse_config({k: v for k, v in tiny().items() if k != "hybrid"}).hybrid is None


@pytest.mark.parametrize("hybrid, message", [
    ({"arm": "unseen"}, "hybrid.arm: 'unseen' is not one of the study's arms ['self']"),
    ({"gridsize": 2}, "hybrid.gridsize: 2 is not one of the study's gridsizes [1]"),
    ({"iteration": 3}, "unknown key 'hybrid.iteration' (did you mean 'iterations'?)"),
    ({"holdout_fraction": 0.9}, "holdout_fraction must be"),
])
def test_a_bad_hybrid_section_is_named(hybrid: dict[str, Any], message: str) -> None:
    with pytest.raises(StudyConfigError) as caught:
        parse_config(tiny(**hybrid), source="tiny.yaml")
    assert message in str(caught.value)
