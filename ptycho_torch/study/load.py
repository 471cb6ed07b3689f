"""A study config (a YAML file or a packaged preset) -> a validated StudyConfig, before anything is written.

Unknown keys are rejected with their path and a "did you mean" (`train.epoch`); values are type-checked
against the dataclass fields; the geometry is checked (every overlap leaves enough train and test
positions); file sources must exist, and their SHA256 is filled in or, when the config gives one, checked.
Every problem is a StudyConfigError that names the key.
"""
from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ptycho_torch import options
from ptycho_torch.baselines import ReconstructionConfig
from ptycho_torch.baselines.ptychi_lsqml import INSTALL
from ptycho_torch.bundle import sha256_file
from ptycho_torch.errors import PtychoTorchError, StudyConfigError, StudyError, TrainError
from ptycho_torch.study.config import (
    ARMS,
    BASELINE_FIXED,
    HYBRID_KEYS,
    SCANS,
    STUDY_DEFAULT_BASELINE,
    STUDY_DEFAULT_HYBRID,
    STUDY_DEFAULT_TRAIN,
    TRAIN_FIXED,
    DataSpec,
    EvaluationSpec,
    FileSource,
    HybridSpec,
    ObjectSpec,
    ProbeSpec,
    Seeds,
    StudyConfig,
    dose_label,
)
from ptycho_torch.study.sources import read_npz_array
from ptycho_torch.study.split import scan_split
from ptycho_torch.train.config import TrainConfig
from ptycho_torch.train.start_weights import describe_shape, shape

PRESETS = ("smoke", "full")
PRESET_DIR = Path(__file__).parent / "presets"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
Source = TypeVar("Source", bound=FileSource)


def _fail(source: str, where: str, problem: str) -> StudyConfigError:
    return StudyConfigError(f"study config {source}: {where}: {problem}")


def _coerce(value: Any, kind: str, where: str, source: str) -> Any:
    """value checked against a field's annotation (int, float, str, bool, optionally `| None`)."""
    kind = kind.replace(" ", "")
    if kind.endswith("|None"):
        return None if value is None else _coerce(value, kind[: -len("|None")], where, source)

    def error(message: str) -> StudyConfigError:
        return StudyConfigError(f"study config {source}: {message}")

    if kind == "bool":
        return options.boolean(value, where, error=error)
    if kind == "int":
        return options.integer(value, where, error=error)
    if kind == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise _fail(source, where, f"must be a number, got {value!r}") from None
        return options.number(value, where, error=error)
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise _fail(source, where, f"must be a non-empty string, got {value!r}")
        return value
    raise AssertionError(f"unsupported field type {kind} at {where}")


def _check_keys(raw: Any, known: list[str], where: str, source: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(source, where, f"must be a mapping of key: value, got {type(raw).__name__}")
    for key in raw:
        if key not in known:
            path = f"{where}.{key}" if where != "(top level)" else str(key)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StudyConfigError(f"study config {source}: unknown key {path!r}{hint}; "
                                   f"{where} takes: {', '.join(sorted(known))}")
    return raw


def _section(cls: type, raw: Any, where: str, source: str, *, skip: tuple[str, ...] = (),
             base: Any = None) -> Any:
    """Build dataclass `cls` from a mapping: unknown keys rejected, values type-checked, nested specs."""
    nested = {"ObjectSpec": ObjectSpec, "ProbeSpec": ProbeSpec}
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    values = {}
    for key, value in _check_keys(raw, list(known), where, source).items():
        kind = str(known[key].type)
        if kind in nested:
            values[key] = _section(nested[kind], value, f"{where}.{key}", source)
        else:
            values[key] = _coerce(value, kind, f"{where}.{key}", source)
    try:
        return cls(**values) if base is None else replace(base, **values)
    except (PtychoTorchError, ValueError) as exc:
        # the trainer's messages name CLI flags (--batch-size): name the config keys instead
        message = re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), str(exc))
        raise _fail(source, where, message) from None


def _list(value: Any, where: str, source: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _fail(source, where, f"must be a non-empty list, got {value!r}")
    return value


def parse_config(raw: Any, *, source: str = "<config>", base_dir: Path = Path(".")) -> StudyConfig:
    """Validate a config mapping (as read from YAML) into a StudyConfig; StudyConfigError names the key."""
    top = ["name", "doses", "overlaps", "gridsizes", "arms", "seeds", "data", "train", "baseline", "baselines",
           "hybrid", "evaluation", "train_by_gridsize", "continue_from"]
    raw = _check_keys(raw, top, "(top level)", source)
    name = _coerce(raw.get("name", "study"), "str", "name", source)
    doses = tuple(_coerce(v, "float", f"doses[{i}]", source)
                  for i, v in enumerate(_list(raw.get("doses", [1e3, 1e4, 1e5]), "doses", source)))
    for i, dose in enumerate(doses):
        if dose <= 0:
            raise _fail(source, f"doses[{i}]", f"must be > 0 mean counts per pattern, got {dose:g}")
    if len({dose_label(d) for d in doses}) != len(doses):
        raise _fail(source, "doses", f"{list(doses)} repeats a dose")
    overlaps_raw = raw.get("overlaps", {"dense": 0.7, "sparse": 0.2})
    if not isinstance(overlaps_raw, dict) or not overlaps_raw:
        raise _fail(source, "overlaps", "must be a non-empty mapping of name: fraction, e.g. {dense: 0.7}")
    overlaps = []
    for key, value in overlaps_raw.items():
        if not isinstance(key, str) or not key.replace("_", "").replace("-", "").isalnum():
            raise _fail(source, f"overlaps.{key}", "names must be letters, digits, '-' or '_'")
        fraction = _coerce(value, "float", f"overlaps.{key}", source)
        if not 0.0 <= fraction < 1.0:
            raise _fail(source, f"overlaps.{key}", f"must be in [0, 1) (dense ~0.7, sparse ~0.2), got {fraction}")
        overlaps.append((key, fraction))
    gridsizes = tuple(_coerce(v, "int", f"gridsizes[{i}]", source)
                      for i, v in enumerate(_list(raw.get("gridsizes", [1, 2]), "gridsizes", source)))
    if any(g < 1 for g in gridsizes) or len(set(gridsizes)) != len(gridsizes):
        raise _fail(source, "gridsizes", f"must be distinct integers >= 1, got {list(gridsizes)}")
    arms = tuple(_coerce(v, "str", f"arms[{i}]", source)
                 for i, v in enumerate(_list(raw.get("arms", list(ARMS)), "arms", source)))
    if any(a not in ARMS for a in arms) or len(set(arms)) != len(arms):
        raise _fail(source, "arms", f"must be distinct names from {list(ARMS)} (unseen: trained on the train "
                    f"region; self: trained on the test data itself), got {list(arms)}")
    seeds = _section(Seeds, raw.get("seeds"), "seeds", source)
    data = _section(DataSpec, raw.get("data"), "data", source)
    data = replace(data, object=_check_file(data.object, "data.object", base_dir, source),
                   probe=_check_file(data.probe, "data.probe", base_dir, source))
    _no_bundle_path(raw.get("train"), "train", source)
    train = _section(TrainConfig, raw.get("train"), "train", source, skip=TRAIN_FIXED, base=STUDY_DEFAULT_TRAIN)
    baselines = _baselines(raw, source)
    evaluation = _section(EvaluationSpec, raw.get("evaluation"), "evaluation", source)
    hybrid = _hybrid(raw.get("hybrid"), arms, gridsizes, source) if "hybrid" in raw else None
    train_by_gridsize = _train_by_gridsize(raw.get("train_by_gridsize", {}), train, gridsizes, source)
    continue_from = _continue_from(raw.get("continue_from", {}), gridsizes, source)
    config = StudyConfig(name, doses, tuple(overlaps), gridsizes, seeds, data, train, baselines, evaluation,
                         arms, base_dir, hybrid, train_by_gridsize, continue_from)
    _check_geometry(config, source)
    _check_starts(config, source)
    return config


def _no_bundle_path(section: Any, where: str, source: str) -> None:
    """A study names no bundle by path (its content would not be part of any unit's inputs): a network
    starts from another of the study's own networks with continue_from."""
    if isinstance(section, dict) and "init_from" in section:
        raise _fail(source, f"{where}.init_from", "a study does not start networks from a bundle file; to "
                    "start one gridsize's networks from another's, use continue_from: {2: 1} (each gridsize-2 "
                    "network then starts from the gridsize-1 network of its own dose, overlap and arm)")


def _continue_from(raw: Any, gridsizes: tuple[int, ...], source: str) -> dict[int, int]:
    """`continue_from: {2: 1}`: gridsize -> the smaller gridsize whose network (same condition and arm)
    starts it; the shapes are checked in _check_starts."""
    if not isinstance(raw, dict):
        raise _fail(source, "continue_from", f"must be a mapping of gridsize: the gridsize it starts from, "
                    f"such as {{2: 1}}, got {raw!r}")
    found: dict[int, int] = {}
    for key, value in raw.items():
        target = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else None
        if target is None or target not in gridsizes:
            raise _fail(source, f"continue_from.{key}", f"{key!r} is not one of the study's gridsizes "
                        f"{list(gridsizes)}")
        start = _coerce(value, "int", f"continue_from.{target}", source)
        if start not in gridsizes:
            raise _fail(source, f"continue_from.{target}", f"{start} is not one of the study's gridsizes "
                        f"{list(gridsizes)}")
        if start >= target:
            raise _fail(source, f"continue_from.{target}", f"must name a smaller gridsize than {target} (the "
                        f"network it starts from trains first), got {start}")
        found[target] = start
    return found


def _check_starts(config: StudyConfig, source: str) -> None:
    """Each continued gridsize's network has the shape of the network it starts from."""
    for target, start in config.continue_from.items():
        try:
            shapes = {g: replace(config.train_for(g), gridsize=g).model_config(config.data.N) for g in (target, start)}
        except TrainError as exc:
            raise _fail(source, f"continue_from.{target}", str(exc)) from None
        if shape(shapes[target]) == shape(shapes[start]):
            continue
        hint = ""
        if shapes[target].inputs_per_pass != shapes[start].inputs_per_pass:
            hint = (f"; set train_by_gridsize: {{{target}: {{encoder: pattern}}}} (one network per pattern, "
                    "shared across the group: it reads one pattern per pass, as a gridsize-1 network does)")
        raise _fail(source, f"continue_from.{target}", (
            f"the gridsize-{target} network ({describe_shape(shapes[target])}) cannot start from the "
            f"gridsize-{start} network ({describe_shape(shapes[start])}): give both the same n_filters and "
            f"depth, and as many patterns per pass{hint}"))


def _train_by_gridsize(raw: Any, train: TrainConfig, gridsizes: tuple[int, ...],
                       source: str) -> dict[int, dict[str, Any]]:
    """`train_by_gridsize: {2: {max_steps: 1600}}`: per gridsize, train settings that differ from `train`
    (checked as `train`'s are); the overrides as given, their values coerced."""
    if not isinstance(raw, dict):
        raise _fail(source, "train_by_gridsize", f"must be a mapping of gridsize: train settings, such as "
                    f"{{2: {{max_steps: 1600}}}}, got {raw!r}")
    found: dict[int, dict[str, Any]] = {}
    for key, section in raw.items():
        gridsize = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else None
        if gridsize is None:
            raise _fail(source, "train_by_gridsize", f"key {key!r} must be a gridsize, one of {list(gridsizes)}")
        where = f"train_by_gridsize.{gridsize}"
        if gridsize not in gridsizes:
            raise _fail(source, where, f"{gridsize} is not one of the study's gridsizes {list(gridsizes)}")
        _no_bundle_path(section, where, source)
        resolved = _section(TrainConfig, section, where, source, skip=TRAIN_FIXED, base=train)
        found[gridsize] = {k: getattr(resolved, k) for k in section or {}}
    return found


def _baselines(raw: dict[str, Any], source: str) -> tuple[ReconstructionConfig, ...]:
    """`baseline: {...}` (one method) or `baselines: [{...}, ...]` (several, one row each); neither: ML."""
    if "baseline" in raw and "baselines" in raw:
        raise _fail(source, "baselines", "give `baseline` (one mapping) or `baselines` (a list), not both")
    if "baselines" not in raw:
        return (_section(ReconstructionConfig, raw.get("baseline"), "baseline", source, skip=BASELINE_FIXED,
                         base=STUDY_DEFAULT_BASELINE),)
    found = tuple(_section(ReconstructionConfig, item, f"baselines[{i}]", source, skip=BASELINE_FIXED,
                           base=STUDY_DEFAULT_BASELINE)
                  for i, item in enumerate(_list(raw["baselines"], "baselines", source)))
    methods = [b.method.value for b in found]
    if len(set(methods)) != len(methods):
        raise _fail(source, "baselines", f"names a method twice ({methods}); one entry per method")
    if "ptychi-lsqml" in methods and importlib.util.find_spec("ptychi") is None:
        raise _fail(source, "baselines", f"method ptychi-lsqml needs pty-chi, which is not installed: {INSTALL}")
    return found


def _hybrid(raw: Any, arms: tuple[str, ...], gridsizes: tuple[int, ...], source: str) -> HybridSpec:
    """`hybrid: {arm: self, gridsize: 1, method: ml, iterations: 30, ...}`: the network + ML arm, started
    from the named network's reconstruction; the other keys are a baseline's (STUDY_DEFAULT_HYBRID's)."""
    if raw is not None and not isinstance(raw, dict):
        raise _fail(source, "hybrid", f"must be a mapping such as {{arm: self, gridsize: 1, method: ml}}, got {raw!r}")
    raw = dict(raw or {})
    arm = _coerce(raw.pop("arm", "self"), "str", "hybrid.arm", source)
    gridsize = _coerce(raw.pop("gridsize", gridsizes[0]), "int", "hybrid.gridsize", source)
    if arm not in arms:
        raise _fail(source, "hybrid.arm", f"{arm!r} is not one of the study's arms {list(arms)}: the hybrid starts "
                    "from that arm's network; add it to arms or name one of them")
    if gridsize not in gridsizes:
        raise _fail(source, "hybrid.gridsize", f"{gridsize} is not one of the study's gridsizes {list(gridsizes)}; "
                    "the hybrid starts from that network")
    reconstruction = _section(ReconstructionConfig, raw, "hybrid", source, skip=BASELINE_FIXED + HYBRID_KEYS,
                              base=STUDY_DEFAULT_HYBRID)
    return HybridSpec(arm, gridsize, reconstruction)


def _check_file(spec: Source, where: str, base_dir: Path, source: str) -> Source:
    """spec with the file's SHA256 filled in; the file must exist and match a SHA256 the config gives."""
    if not spec.is_file:
        if spec.sha256 is not None:
            raise _fail(source, f"{where}.sha256", "only a file source has a SHA256; remove it or name the file")
        return spec
    if spec.sha256 is not None and not SHA256_HEX.fullmatch(spec.sha256.lower()):
        raise _fail(source, f"{where}.sha256", f"must be 64 hex digits, got {spec.sha256!r}")
    path = base_dir / spec.source
    if not path.is_file():
        hint = ", or pass the probe with --probe-from" if isinstance(spec, ProbeSpec) else ""
        raise _fail(source, f"{where}.source", f"no such file {spec.source!r} (a relative path is read from "
                    f"the config file's folder); put the file there{hint}")
    digest = sha256_file(path)
    if spec.sha256 is not None and spec.sha256.lower() != digest:
        raise _fail(source, f"{where}.sha256", f"{spec.recorded} has SHA256 {digest}, not the {spec.sha256} the "
                    "config names; use the file the study was run with")
    return replace(spec, sha256=digest)


def _check_geometry(config: StudyConfig, source: str) -> None:
    data = config.data
    if data.N < 8 or data.N % (2 ** config.train.depth):
        raise _fail(source, "data.N", f"{data.N} must be >= 8 and divisible by 2**train.depth = "
                    f"{2 ** config.train.depth}")
    if data.scan not in SCANS:
        raise _fail(source, "data.scan", f"must be one of {list(SCANS)}, got {data.scan!r}")
    if not 0.0 < data.test_fraction < 1.0:
        raise _fail(source, "data.test_fraction", f"must be in (0, 1), got {data.test_fraction}")
    if data.object.feature_px <= 0:
        raise _fail(source, "data.object.feature_px", f"must be > 0, got {data.object.feature_px}")
    need = max(4, max(config.gridsizes) ** 2)
    for name, overlap in config.overlaps:
        try:
            split = scan_split(data, overlap, config.seeds.data)
        except StudyError as exc:
            raise _fail(source, f"overlaps.{name}", str(exc)) from None
        if split.n_train < need or split.n_test < need:
            raise _fail(source, f"overlaps.{name}", (
                f"a {data.object_size} px object scanned at overlap {overlap} holds {len(split.xcoords)} "
                f"positions; the split leaves {split.n_train} train and {split.n_test} test positions "
                f"({split.n_dropped} dropped in the guard band), and the study needs at least {need} in each "
                f"(gridsize {max(config.gridsizes)}); raise data.object_size or data.test_fraction"))


def load_config(path: str | Path | None = None, *, preset: str | None = None,
                probe_from: str | Path | None = None) -> StudyConfig:
    """Read and validate a YAML config file or a packaged preset; --probe-from replaces data.probe."""
    if (path is None) == (preset is None):
        raise StudyConfigError("give exactly one of --config FILE or --preset NAME")
    if preset is not None:
        if preset not in PRESETS:
            raise StudyConfigError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
        file = PRESET_DIR / f"{preset}.yaml"
        source, base_dir = f"preset {preset!r}", Path.cwd()
    else:
        file = Path(path)  # type: ignore[arg-type]
        if not file.is_file():
            raise StudyConfigError(f"--config {file}: no such file")
        source, base_dir = str(file), file.resolve().parent
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StudyConfigError(f"study config {source}: not valid YAML ({exc})") from None
    if probe_from is not None:  # the probe file decides the probe and N
        probe = read_npz_array(Path(probe_from), "probeGuess", "--probe-from")
        raw = dict(raw) if isinstance(raw, dict) else raw
        if isinstance(raw, dict):
            data = raw["data"] = dict(raw.get("data") or {})
            data["probe"] = {"source": str(Path(probe_from).resolve())}
            data["N"] = int(probe.shape[0])
    return parse_config(raw, source=source, base_dir=base_dir)
