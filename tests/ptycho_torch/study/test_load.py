"""Loading a study config: every bad key or value is a clear error naming its path, before anything is
written; presets; --probe-from; file sources recorded by name and checked by SHA256."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from ptycho_torch.bundle import sha256_file
from ptycho_torch.cli import main
from ptycho_torch.errors import StudyConfigError, StudyError
from ptycho_torch.simulate import make_probe
from ptycho_torch.study.load import PRESET_DIR, load_config, parse_config
from ptycho_torch.study.sources import load_sources


def _study(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = tmp_path / "study.yaml"
    config.write_text(text)
    code = main(["study", "--config", str(config), "--output-dir", str(tmp_path / "out")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("dose: [1000]\n", ["unknown key 'dose'", "did you mean 'doses'"]),
        ("train: {epoch: 3}\n", ["unknown key 'train.epoch'", "did you mean 'epochs'"]),
        ("data: {object: {colour: red}}\n", ["unknown key 'data.object.colour'", "feature_px"]),
        ("baseline: {seed: 3}\n", ["unknown key 'baseline.seed'"]),
        ("evaluation: {registration: true}\n", ["unknown key 'evaluation.registration'", "'register'"]),
        ("doses: [-5]\n", ["doses[0]", "must be > 0"]),
        ("doses: [1e3, lots]\n", ["doses[1]", "must be a number"]),
        ("doses: [1e3, 1000]\n", ["doses", "repeats a dose"]),
        ("overlaps: {dense: 1.5}\n", ["overlaps.dense", "[0, 1)"]),
        ("overlaps: [0.7]\n", ["overlaps", "mapping"]),
        ("gridsizes: [1, 1]\n", ["gridsizes", "distinct"]),
        ("train: {epochs: two}\n", ["train.epochs", "must be an integer"]),
        ("train: {epochs: 0}\n", ["train", "epochs must be an integer >= 1"]),
        ("train: {loss: l2}\n", ["train", "'l2'"]),
        ("baseline: {method: sirt}\n", ["baseline", "'sirt' is not a known choice"]),
        ("baseline: {refine_probe: 1}\n", ["baseline.refine_probe", "true or false"]),
        ("baselines: [{method: ml}, {itrations: 3}]\n", ["unknown key 'baselines[1].itrations'"]),
        ("baselines: [{method: ml}, {method: ml, iterations: 3}]\n", ["baselines", "names a method twice"]),
        ("baselines: []\n", ["baselines", "non-empty list"]),
        ("baseline: {method: ml}\nbaselines: [{method: epie}]\n", ["baselines", "not both"]),
        ("arms: [unseen, elsewhere]\n", ["arms", "'unseen', 'self'", "elsewhere"]),
        ("arms: [self, self]\n", ["arms", "distinct"]),
        ("data: {N: 60}\n", ["data.N", "divisible by 2**train.depth"]),
        ("data: {scan: spiral}\n", ["data.scan", "spiral"]),
        ("data: {object_size: 140}\n", ["overlaps.dense", "object_size"]),
        ("data: {N: 32, object_size: 120}\n", ["overlaps.sparse", "at least 4 in each"]),
        ("seeds: {data: -1}\n", ["seeds", "data must be >= 0"]),
        ("seeds: {train: 1.5}\n", ["seeds.train", "must be an integer"]),
        ("doses: [1\n", ["not valid YAML"]),
        ("- 1\n- 2\n", ["(top level)", "mapping"]),
    ],
)
def test_bad_config_is_a_clear_error_with_the_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       text: str, needles: list[str]) -> None:
    code, err = _study(tmp_path, text, capsys)
    assert code == 1, err
    assert err.startswith("ptycho-torch study: error: study config"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "out").exists()  # validated before anything is written


def test_missing_config_and_source_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "--config", str(tmp_path / "none.yaml"), "--output-dir", str(tmp_path)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["study", "--output-dir", str(tmp_path)]) == 2  # one of --config / --preset is required
    assert main(["study", "--preset", "smoke", "--config", "x.yaml", "--output-dir", str(tmp_path)]) == 2
    assert main(["study", "--preset", "huge", "--output-dir", str(tmp_path)]) == 2
    with pytest.raises(StudyConfigError, match="exactly one"):
        load_config(None)


def test_defaults_and_yaml_exponents() -> None:
    config = parse_config({"doses": ["1e3", 1e4, 100000]})  # YAML 1.1 reads 1e3 as a string
    assert config.doses == (1e3, 1e4, 1e5)
    assert config.overlaps == (("dense", 0.7), ("sparse", 0.2))
    assert config.gridsizes == (1, 2)
    assert [b.method.value for b in config.baselines] == ["ml"] and config.baselines[0].seed == 0
    assert config.arms == ("unseen", "self")  # both network arms unless a config says otherwise
    assert config.evaluation.register is False and config.evaluation.fit_scale is True
    round_trip = parse_config(config.to_dict())
    assert round_trip.to_dict() == config.to_dict()


def test_several_baselines_one_row_each_in_order_and_pty_chi_is_checked_before_anything_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = {"baselines": [{"method": "ptychi-lsqml", "iterations": 7, "batch_size": 16}, {"method": "ml"}],
           "arms": ["self"]}
    config = parse_config(raw)
    assert [(b.method.value, b.iterations) for b in config.baselines] == [("ptychi-lsqml", 7), ("ml", 100)]
    assert config.arms == ("self",)
    assert parse_config(config.to_dict()).to_dict() == config.to_dict()  # the resolved config loads back
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ptychi" else real(name, *a))
    with pytest.raises(StudyConfigError, match=r"baselines: method ptychi-lsqml needs pty-chi.*ptycho-harness\[ptychi\]"):
        parse_config(raw)


def test_presets_validate_and_span_the_anchor_grid() -> None:
    smoke, full = load_config(preset="smoke"), load_config(preset="full")
    assert full.doses == (1e3, 1e4, 1e5)
    assert dict(full.overlaps) == {"dense": 0.7, "sparse": 0.2} == dict(smoke.overlaps)
    assert full.gridsizes == smoke.gridsizes == (1, 2)
    assert smoke.train.device == "cpu" and smoke.train.epochs <= 2 and smoke.data.probe.source == "synthetic"
    assert full.train.device == "auto" and full.data.N == 64


def test_probe_from_replaces_the_probe_and_sets_n(tmp_path: Path) -> None:
    probe = make_probe(16, defocus_rad=2.0)
    path = tmp_path / "probe.npz"
    np.savez(path, probeGuess=probe)
    config = load_config(preset="smoke", probe_from=path)
    assert config.data.N == 16 and config.data.probe.source == str(path.resolve())
    assert config.data.probe.sha256 == sha256_file(path)  # the resolved config records name and SHA256
    assert config.to_dict()["data"]["probe"] == {"source": "probe.npz", "sha256": sha256_file(path),
                                                 "aperture_radius_px": None, "defocus_rad": None}
    sources = load_sources(config)
    np.testing.assert_array_equal(sources.probe, probe)
    assert sources.object.shape == (config.data.object_size,) * 2
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(StudyError, match="no 'probeGuess' array"):
        load_config(preset="smoke", probe_from=tmp_path / "other.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(StudyError, match="not a readable .npz"):
        load_config(preset="smoke", probe_from=tmp_path / "bad.npz")


def test_a_file_source_is_read_from_the_configs_folder_and_checked_by_sha256(tmp_path: Path) -> None:
    probe = make_probe(32, defocus_rad=2.0)
    np.savez(tmp_path / "probe.npz", probeGuess=probe)
    digest = sha256_file(tmp_path / "probe.npz")
    smoke = yaml.safe_load((PRESET_DIR / "smoke.yaml").read_text())
    smoke["data"]["probe"] = {"source": "probe.npz"}
    config_file = tmp_path / "study.yaml"
    config_file.write_text(yaml.safe_dump(smoke))
    config = load_config(config_file)
    assert config.data.probe.sha256 == digest and config.data.probe.recorded == "probe.npz"
    np.testing.assert_array_equal(load_sources(config).probe, probe)

    smoke["data"]["probe"] = {"source": "probe.npz", "sha256": "0" * 64}  # another file than the one recorded
    config_file.write_text(yaml.safe_dump(smoke))
    with pytest.raises(StudyConfigError, match=f"data.probe.sha256: probe.npz has SHA256 {digest}, not the 0000"):
        load_config(config_file)
    smoke["data"]["probe"] = {"source": "probe.npz", "sha256": "abc"}
    config_file.write_text(yaml.safe_dump(smoke))
    with pytest.raises(StudyConfigError, match="data.probe.sha256: must be 64 hex digits"):
        load_config(config_file)
    smoke["data"]["probe"] = {"source": "elsewhere.npz"}
    config_file.write_text(yaml.safe_dump(smoke))
    with pytest.raises(StudyConfigError, match="data.probe.source: no such file 'elsewhere.npz'"):
        load_config(config_file)
    with pytest.raises(StudyConfigError, match="data.object.sha256: only a file source has a SHA256"):
        parse_config({"data": {"object": {"sha256": digest}}})


def test_train_by_gridsize_overrides_the_train_section_for_one_gridsize() -> None:
    raw = {"gridsizes": [1, 2], "train": {"epochs": None, "max_steps": 2000, "n_filters": 8},
           "train_by_gridsize": {2: {"max_steps": 1600}}}
    config = parse_config(raw)
    assert config.train_for(1) == config.train and config.train_for(1).max_steps == 2000
    two = config.train_for(2)
    assert (two.max_steps, two.n_filters, two.epochs) == (1600, 8, None)  # the rest from the train section
    assert parse_config(config.to_dict()).to_dict() == config.to_dict()  # the resolved config loads back
    assert config.to_dict()["train_by_gridsize"] == {2: {"max_steps": 1600}}
    assert "train_by_gridsize" not in parse_config({}).to_dict()


@pytest.mark.parametrize(
    ("section", "needles"),
    [
        ({3: {"max_steps": 10}}, ["train_by_gridsize.3", "not one of the study's gridsizes [1, 2]"]),
        ({2: {"max_step": 10}}, ["unknown key 'train_by_gridsize.2.max_step'", "did you mean 'max_steps'"]),
        ({2: {"gridsize": 1}}, ["unknown key 'train_by_gridsize.2.gridsize'"]),
        ({2: {"max_steps": "many"}}, ["train_by_gridsize.2.max_steps", "must be an integer"]),
        ({2: {"batch_size": 0}}, ["train_by_gridsize.2", "batch_size"]),
        ({"two": {"max_steps": 10}}, ["train_by_gridsize", "'two'", "gridsize"]),
        ([{"max_steps": 10}], ["train_by_gridsize", "mapping"]),
    ],
)
def test_a_bad_train_by_gridsize_is_an_error_naming_its_path(section: object, needles: list[str]) -> None:
    with pytest.raises(StudyConfigError) as caught:
        parse_config({"gridsizes": [1, 2], "train_by_gridsize": section})
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))


def test_continue_from_starts_a_gridsize_from_a_smaller_gridsizes_network() -> None:
    raw = {"gridsizes": [1, 2], "continue_from": {2: 1}, "train_by_gridsize": {2: {"encoder": "pattern"}}}
    config = parse_config(raw)
    assert config.continue_from == {2: 1}
    assert config.to_dict()["continue_from"] == {2: 1}
    assert parse_config(config.to_dict()).to_dict() == config.to_dict()  # the resolved config loads back
    assert parse_config({"gridsizes": [1, 2]}).continue_from == {}
    assert "continue_from" not in parse_config({}).to_dict()


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        # a four-channel network cannot take a one-channel network's weights
        ({"continue_from": {2: 1}}, ["continue_from.2", "train_by_gridsize: {2: {encoder: pattern}}"]),
        ({"continue_from": {2: 1}, "train_by_gridsize": {2: {"encoder": "pattern", "n_filters": 8}}},
         ["continue_from.2", "n_filters 8", "n_filters 16"]),
        ({"continue_from": {1: 2}}, ["continue_from.1", "a smaller gridsize"]),
        ({"continue_from": {2: 2}}, ["continue_from.2", "a smaller gridsize"]),
        ({"continue_from": {3: 1}}, ["continue_from.3", "not one of the study's gridsizes [1, 2]"]),
        ({"continue_from": {2: 4}}, ["continue_from.2", "4 is not one of the study's gridsizes [1, 2]"]),
        ({"continue_from": {2: "one"}}, ["continue_from.2", "must be an integer"]),
        ({"continue_from": [1]}, ["continue_from", "mapping"]),
        ({"train": {"init_from": "a/wts.h5.zip"}}, ["train.init_from", "continue_from"]),
        ({"train_by_gridsize": {2: {"init_from": "a/wts.h5.zip"}}}, ["train_by_gridsize.2.init_from",
                                                                      "continue_from"]),
    ],
)
def test_a_bad_continue_from_is_an_error_naming_its_path(raw: dict[str, object], needles: list[str]) -> None:
    with pytest.raises(StudyConfigError) as caught:
        parse_config({"gridsizes": [1, 2], **raw})
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))
