"""The dose/overlap study: PtychoPINN against an iterative baseline (`ptycho-torch study`).

    ptycho-torch study --preset smoke --output-dir OUT
    ptycho-torch study --config study.yaml --output-dir OUT [--probe-from probe.npz]

One object and one probe; for every dose (mean counts per pattern) and scan overlap, one simulated scan of
that object is split into a TRAIN region and a TEST region: the test positions are the right-most
`test_fraction` of the scan, and train positions whose patch window would share any object pixel with a
test patch window are dropped (a guard band of N + 1 px between patch centres), so the network is judged on
an object region it never saw. The network (one per gridsize) is trained on the train region and
reconstructs the test region; the iterative baseline reconstructs the test region from its own data (it
needs no training). Every method, and a constant object for reference, is scored by metrics.evaluate on one
region per condition: the pixels where the test positions' summed probe intensity (peak 1) is >= 0.1.

Stages, run in this order, each made of units (one per condition): datasets, train, infer, baseline,
evaluate, comparison. `manifest.json` records every unit's inputs hash (its config slice plus the SHA256 of
the upstream files it reads) and the SHA256 of each output. A unit is reused when its inputs hash matches
and every output is present and unchanged; otherwise it runs again, and so, through the hashes, does
whatever reads its outputs. An interrupted training resumes from its checkpoint.

Output folder: datasets/<dose>_<overlap>/{train,test,region}.npz, runs/<dose>_<overlap>_gs<g>/ (bundle,
history, recon.npz, metrics.json), runs/<dose>_<overlap>_<baseline method>/ and .../_constant/, metrics.csv,
comparison.md, figures/*.png, study.yaml (the resolved config) and manifest.json. The config is validated
on load, before anything is written: unknown keys are rejected with their path (e.g. `train.epoch`).
"""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import json
import math
import re
import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_torch import options
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.baselines import ReconstructionConfig
from ptycho_torch.bundle import sha256_file
from ptycho_torch.errors import PtychoTorchError, StudyConfigError, StudyError
from ptycho_torch.region import COVERAGE_THRESHOLD, covered
from ptycho_torch.train import TrainConfig

PRESETS = ("smoke", "full")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "ptycho_torch-study-manifest/1"
RESOLVED_CONFIG_NAME = "study.yaml"
CONSTANT = "constant"
NETWORK = "pinn"
SCANS = ("grid", "random")
# study-level settings, not per-section knobs: the file name, the study's seeds, the grid
TRAIN_FIXED = ("data", "output_dir", "seed", "gridsize")
BASELINE_FIXED = ("seed",)


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ObjectSpec:
    """source: "synthetic" (simulate.make_object seeded by seeds.data) or the path of an .npz whose
    `objectGuess` is used (centre-cropped to data.object_size)."""

    source: str = "synthetic"
    feature_px: float = 7.0


@dataclass(frozen=True)
class ProbeSpec:
    """source: "synthetic" (simulate.make_probe) or the path of an .npz holding `probeGuess` (N x N)."""

    source: str = "synthetic"
    aperture_radius_px: float | None = None
    defocus_rad: float = 5.0


@dataclass(frozen=True)
class DataSpec:
    N: int = 64  # pattern side; with a probe file, the probe's side
    object_size: int = 384  # object side in pixels; the scan fills it at spacing (1 - overlap) * N
    test_fraction: float = 0.3  # share of the scan (right-most positions) held out as the test region
    scan: str = "grid"  # "grid" or "random" (grid jittered by +-spacing/2)
    object: ObjectSpec = field(default_factory=ObjectSpec)
    probe: ProbeSpec = field(default_factory=ProbeSpec)


@dataclass(frozen=True)
class Seeds:
    data: int = 0  # object, scan jitter, Poisson noise
    train: int = 0  # network initialisation, validation split, batch order, grouping
    baseline: int = 0  # the order in which the baseline visits positions

    def __post_init__(self) -> None:
        for name in ("data", "train", "baseline"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class EvaluationSpec:
    """How metrics.evaluate scores every method (the same for all). register is off by default: every
    method reconstructs in the simulation's own frame (true positions, true probe), so there is no shift to
    find, and an unbounded registration of a weak reconstruction locks onto a spurious correlation peak
    (shifts of 30-75 px were measured in the committed CPU study), which corrupts its scores."""

    fit_scale: bool = True  # object amplitude and probe power are not separable: least-squares scale
    remove_ramp: bool = True  # linear phase ramp
    register: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """A validated study. train and baseline are the trainer's and the baseline's own option records;
    their data/output_dir/seed/gridsize fields are filled per unit. base_dir resolves relative paths."""

    name: str
    doses: tuple[float, ...]
    overlaps: tuple[tuple[str, float], ...]  # (name, fraction), e.g. ("dense", 0.7)
    gridsizes: tuple[int, ...]
    seeds: Seeds
    data: DataSpec
    train: TrainConfig
    baseline: ReconstructionConfig
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    base_dir: Path = Path(".")

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML-safe plain data, in the layout a config file uses."""
        train = {k: v for k, v in asdict(self.train).items() if k not in TRAIN_FIXED}
        baseline = {k: _plain(v) for k, v in asdict(self.baseline).items() if k not in BASELINE_FIXED}
        return {"name": self.name, "doses": list(self.doses), "overlaps": dict(self.overlaps),
                "gridsizes": list(self.gridsizes), "seeds": asdict(self.seeds), "data": asdict(self.data),
                "train": train, "baseline": baseline, "evaluation": asdict(self.evaluation)}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


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


STUDY_DEFAULT_TRAIN = TrainConfig(data="", output_dir="", epochs=10, batch_size=16, n_filters=16, depth=3)
STUDY_DEFAULT_BASELINE = ReconstructionConfig(method="ml", iterations=100, batch_size=64)


def parse_config(raw: Any, *, source: str = "<config>", base_dir: Path = Path(".")) -> StudyConfig:
    """Validate a config mapping (as read from YAML) into a StudyConfig; StudyConfigError names the key."""
    top = ["name", "doses", "overlaps", "gridsizes", "seeds", "data", "train", "baseline", "evaluation"]
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
    seeds = _section(Seeds, raw.get("seeds"), "seeds", source)
    data = _section(DataSpec, raw.get("data"), "data", source)
    train = _section(TrainConfig, raw.get("train"), "train", source, skip=TRAIN_FIXED, base=STUDY_DEFAULT_TRAIN)
    baseline = _section(ReconstructionConfig, raw.get("baseline"), "baseline", source, skip=BASELINE_FIXED,
                        base=STUDY_DEFAULT_BASELINE)
    evaluation = _section(EvaluationSpec, raw.get("evaluation"), "evaluation", source)
    config = StudyConfig(name, doses, tuple(overlaps), gridsizes, seeds, data, train, baseline, evaluation,
                         base_dir)
    _check_geometry(config, source)
    return config


def _list(value: Any, where: str, source: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _fail(source, where, f"must be a non-empty list, got {value!r}")
    return value


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
            layout = scan_layout(data, overlap, config.seeds.data)
        except StudyError as exc:
            raise _fail(source, f"overlaps.{name}", str(exc)) from None
        if layout.n_train < need or layout.n_test < need:
            raise _fail(source, f"overlaps.{name}", (
                f"a {data.object_size} px object scanned at overlap {overlap} holds {len(layout.xcoords)} "
                f"positions; the split leaves {layout.n_train} train and {layout.n_test} test positions "
                f"({layout.n_dropped} dropped in the guard band), and the study needs at least {need} in each "
                f"(gridsize {max(config.gridsizes)}); raise data.object_size or data.test_fraction"))


def load_config(path: str | Path | None = None, *, preset: str | None = None,
                 probe_from: str | Path | None = None) -> StudyConfig:
    """Read and validate a YAML config file or a packaged preset; --probe-from replaces data.probe."""
    import yaml

    if (path is None) == (preset is None):
        raise StudyConfigError("give exactly one of --config FILE or --preset NAME")
    if preset is not None:
        if preset not in PRESETS:
            raise StudyConfigError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
        file = Path(__file__).parent / "study_presets" / f"{preset}.yaml"
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
        probe = _read_npz_array(Path(probe_from), "probeGuess", "--probe-from")
        raw = dict(raw) if isinstance(raw, dict) else raw
        if isinstance(raw, dict):
            data = raw["data"] = dict(raw.get("data") or {})
            data["probe"] = {"source": str(Path(probe_from).resolve())}
            data["N"] = int(probe.shape[0])
    return parse_config(raw, source=source, base_dir=base_dir)


def dose_label(dose: float) -> str:
    """1000 -> "1e3", 2500 -> "2.5e3": short, file-name safe, unique to 4 significant digits."""
    mantissa, exponent = f"{dose:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# ----------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Layout:
    """All simulated positions (P,) and the train / test masks (P,) bool; the rest is the guard band."""

    xcoords: np.ndarray
    ycoords: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.train.sum())

    @property
    def n_test(self) -> int:
        return int(self.test.sum())

    @property
    def n_dropped(self) -> int:
        return len(self.xcoords) - self.n_train - self.n_test


def scan_layout(data: DataSpec, overlap: float, seed: int) -> Layout:
    """A square scan filling the object at spacing (1 - overlap) N, split into disjoint regions.

    Test: positions with x at or beyond the (1 - test_fraction) quantile. Train: positions whose rounded
    centre lies at least N + 1 px left of every test centre, so no object pixel is in both a train and a
    test patch window (nor in the extra bilinear tap).
    """
    from ptycho_torch.simulate import SimulationError, scan_positions

    n, size = data.N, data.object_size
    spacing = (1.0 - overlap) * n
    # scan_positions needs ceil(last centre) + N <= size, with the first centre at N; 1 px spare for rounding
    columns = math.floor((size - 2 * n - 1) / spacing) + 1 if size > 2 * n else 0
    if data.scan == "random":
        columns -= 1  # the jitter may widen the span by up to one spacing
    if columns < 2:
        raise StudyError(f"a {size} px object cannot hold a {n} px scan at overlap {overlap} with a margin; "
                         f"raise data.object_size to at least {math.ceil(2 * n + 2 * spacing)}")
    try:
        x, y, _ = scan_positions(columns * columns, N=n, overlap=overlap, scan=data.scan,  # type: ignore[arg-type]
                                 seed=seed, object_size=size)
    except SimulationError as exc:
        raise StudyError(str(exc)) from None
    test = x >= np.quantile(x, 1.0 - data.test_fraction)
    first_test = np.floor(x[test].min() + 0.5)
    train = np.floor(x + 0.5) + n + 1 <= first_test
    return Layout(x, y, train & ~test, test)


# ----------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Sources:
    """object (S, S) complex64 and probe (N, N) complex64, with content hashes for the manifest."""

    object: np.ndarray
    probe: np.ndarray
    object_sha256: str
    probe_sha256: str


def _array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _read_npz_array(path: Path, key: str, what: str) -> np.ndarray:
    import zipfile

    if not path.is_file():
        raise StudyError(f"{what} {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if key not in npz.files:
                raise StudyError(f"{what} {path}: no {key!r} array (keys: {sorted(npz.files)})")
            array = npz[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StudyError(f"{what} {path}: not a readable .npz without pickle ({exc})") from None
    if array.ndim != 2 or not np.iscomplexobj(array) or not np.isfinite(array).all():
        raise StudyError(f"{what} {path}: {key} must be a finite complex 2-D array, got {array.dtype} "
                         f"{array.shape}")
    return array.astype(np.complex64)


def load_sources(config: StudyConfig) -> Sources:
    from ptycho_torch.simulate import make_object, make_probe

    data = config.data
    if data.probe.source == "synthetic":
        probe = make_probe(data.N, aperture_radius_px=data.probe.aperture_radius_px,
                           defocus_rad=data.probe.defocus_rad)
    else:
        probe = _read_npz_array(config.base_dir / data.probe.source, "probeGuess", "data.probe.source")
        if probe.shape != (data.N, data.N):
            raise StudyError(f"data.probe.source {data.probe.source}: the probe is {probe.shape} but data.N is "
                             f"{data.N}; set data.N: {probe.shape[0]} (square probes only)")
    size = data.object_size
    if data.object.source == "synthetic":
        obj = make_object((size, size), seed=config.seeds.data, feature_px=data.object.feature_px)
    else:
        full = _read_npz_array(config.base_dir / data.object.source, "objectGuess", "data.object.source")
        if min(full.shape) < size:
            raise StudyError(f"data.object.source {data.object.source}: objectGuess is {full.shape}, smaller "
                             f"than data.object_size {size}; lower data.object_size")
        top, left = (full.shape[0] - size) // 2, (full.shape[1] - size) // 2
        obj = full[top : top + size, left : left + size]
    return Sources(obj, probe, _array_sha256(obj), _array_sha256(probe))


# ----------------------------------------------------------------------------------------------- manifest


class Manifest:
    """manifest.json: per unit {stage, inputs (the hash of settings_sha256, the config slice's hash, and
    upstream {relpath: sha256} of the files it read), outputs {relpath: sha256}, seconds, finished}; `pending`
    holds units started and not finished (a training may resume from its checkpoint). Saved atomically."""

    def __init__(self, root: Path) -> None:
        self.path = root / MANIFEST_NAME
        self.units: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, str] = {}
        self.warning: str | None = None
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                if data.get("format") != MANIFEST_FORMAT:
                    raise ValueError(f"format {data.get('format')!r}")
                self.units, self.pending = dict(data["units"]), dict(data.get("pending", {}))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.warning = f"{self.path} is unreadable ({exc}); every stage runs again"

    def save(self) -> None:
        text = json.dumps({"format": MANIFEST_FORMAT, "units": self.units, "pending": self.pending},
                          indent=2, sort_keys=True)
        atomic_write_bytes(self.path, text.encode())


@dataclass(frozen=True)
class Unit:
    """One resumable piece of a stage. reads/writes: paths relative to the output folder."""

    stage: str
    name: str
    settings: Mapping[str, Any]  # the config slice this unit depends on (JSON-able)
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[bool], None]  # argument: True when resuming an interrupted run of the same inputs

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.name}"


@dataclass(frozen=True)
class StudyResult:
    output_dir: Path
    ran: tuple[str, ...]  # unit keys, in run order
    reused: tuple[str, ...]
    seconds: float


class Runner:
    """Runs units in order, skipping those whose inputs hash and outputs match the manifest."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root, self.log = root, log
        self.manifest = Manifest(root)
        if self.manifest.warning:
            log(f"warning: {self.manifest.warning}")
        self.hashes: dict[str, str] = {}  # relpath -> sha256 of outputs verified or written in this run
        self.ran: list[str] = []
        self.reused: list[str] = []

    def _upstream(self, unit: Unit) -> dict[str, str]:
        missing = [rel for rel in unit.reads if rel not in self.hashes]
        if missing:
            raise AssertionError(f"{unit.key} reads {missing}, which no earlier unit wrote")
        return {rel: self.hashes[rel] for rel in unit.reads}

    def _stale(self, unit: Unit, inputs: str) -> str | None:
        """Why the unit must run (None: its recorded outputs are current and may be reused)."""
        entry = self.manifest.units.get(unit.key)
        if not entry:
            return "new"
        if entry.get("inputs") != inputs or set(entry.get("outputs", {})) != set(unit.writes):
            changed = [rel for rel, digest in entry.get("upstream", {}).items() if self.hashes.get(rel) != digest]
            return f"inputs changed ({', '.join(changed)})" if changed else "settings changed"
        for rel, digest in entry["outputs"].items():
            path = self.root / rel
            if not path.is_file():
                return f"{rel} is missing"
            if sha256_file(path) != digest:
                return f"{rel} was modified"
        return None

    def execute(self, unit: Unit, index: int, total: int) -> None:
        settings = hashlib.sha256(json.dumps(unit.settings, sort_keys=True, default=str).encode()).hexdigest()
        upstream = self._upstream(unit)
        inputs = hashlib.sha256(json.dumps({"stage": unit.stage, "settings": settings, "upstream": upstream},
                                           sort_keys=True).encode()).hexdigest()
        prefix = f"[{index}/{total}] {unit.stage:<10} {unit.name}"
        reason = self._stale(unit, inputs)
        if reason is None:
            outputs = self.manifest.units[unit.key]["outputs"]
            self.hashes.update(outputs)
            self.reused.append(unit.key)
            self.log(f"{prefix}: reused")
            return
        resume = self.manifest.pending.get(unit.key) == inputs
        self.manifest.units.pop(unit.key, None)
        self.manifest.pending[unit.key] = inputs
        self.manifest.save()
        self.log(f"{prefix}: running ({reason}{', resuming' if resume else ''})")
        started = time.perf_counter()
        try:
            unit.run(resume)
        except PtychoTorchError as exc:
            raise StudyError(f"stage {unit.key} failed: {exc}. Fix the cause and run the same command "
                             "again: finished stages are reused") from None
        seconds = time.perf_counter() - started
        outputs = {}
        for rel in unit.writes:
            if not (self.root / rel).is_file():
                raise AssertionError(f"{unit.key} did not write {rel}")
            outputs[rel] = sha256_file(self.root / rel)
        self.hashes.update(outputs)
        self.manifest.pending.pop(unit.key, None)
        self.manifest.units[unit.key] = {"stage": unit.stage, "inputs": inputs, "settings_sha256": settings,
                                         "upstream": upstream, "outputs": outputs, "seconds": round(seconds, 3),
                                         "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.manifest.save()
        self.ran.append(unit.key)
        self.log(f"{prefix}: done in {seconds:.1f} s")


# ----------------------------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Condition:
    """One (dose, overlap) pair; names are file-name safe."""

    dose: float
    overlap_name: str
    overlap: float

    @property
    def name(self) -> str:
        return f"{dose_label(self.dose)}_{self.overlap_name}"

    @property
    def data_dir(self) -> str:
        return f"datasets/{self.name}"

    def run_dir(self, method: str) -> str:
        return f"runs/{self.name}_{method}"


def conditions(config: StudyConfig) -> list[Condition]:
    return [Condition(d, name, f) for d in config.doses for name, f in config.overlaps]


def network_method(gridsize: int) -> str:
    return f"gs{gridsize}"


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, allow_nan=True).encode())


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _noise_seed(seed: int, condition: Condition) -> int:
    """A seed per condition, stable across platforms and Python versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{condition.name}".encode()).digest()[:4], "little")


def make_datasets(config: StudyConfig, sources: Sources, condition: Condition, folder: Path) -> None:
    """train.npz and test.npz (the two regions of one scan of the object) and region.npz (`region`, (S, S)
    bool: where the test positions' summed probe intensity, peak 1, reaches COVERAGE_THRESHOLD)."""
    import torch

    from ptycho_torch.baselines.common import illumination
    from ptycho_torch.simulate import SimulatedData, forward_amplitude, write_npz

    layout = scan_layout(config.data, condition.overlap, config.seeds.data)
    keep = layout.train | layout.test  # the guard band is never simulated
    x, y = layout.xcoords[keep], layout.ycoords[keep]
    diffraction = forward_amplitude(sources.object, sources.probe, x, y, nphotons=condition.dose,
                                    seed=_noise_seed(config.seeds.data, condition))
    scan = SimulatedData(diffraction, x, y, sources.probe, sources.object,
                         np.flatnonzero(keep).astype(np.int64), condition.dose)
    folder.mkdir(parents=True, exist_ok=True)
    write_npz(folder / "train.npz", scan.subset(layout.train[keep]))
    test = scan.subset(layout.test[keep])
    write_npz(folder / "test.npz", test)
    centres = torch.from_numpy(np.stack([test.xcoords, test.ycoords], axis=1).astype(np.float32))
    weight = illumination(torch.from_numpy(sources.probe), centres, sources.object.shape)
    _write_npz(folder / "region.npz", region=covered(weight.numpy()))


def train_network(config: StudyConfig, data_dir: Path, run_dir: Path, gridsize: int, resume: bool) -> None:
    """The trainer's outputs in run_dir plus train.json (wall seconds, epochs, device, patterns)."""
    from ptycho_torch.train import CHECKPOINT_NAME, train

    run_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(config.train, data=str(data_dir / "train.npz"), output_dir=str(run_dir),
                       seed=config.seeds.train, gridsize=gridsize)
    resume = resume and (run_dir / CHECKPOINT_NAME).is_file()
    started = time.perf_counter()
    result = train(settings, resume=resume, progress=False)
    earlier = sum(r.seconds for r in result.history[: result.resumed_from_epoch])  # before the interruption
    last = result.history[-1]
    _write_json(run_dir / "train.json", {
        "seconds": time.perf_counter() - started + earlier, "epochs": len(result.history),
        "resumed_from_epoch": result.resumed_from_epoch, "device": result.device,
        "n_patterns": _pattern_count(data_dir / "train.npz"),
        "patterns_per_s": float(np.mean([r.patterns_per_s for r in result.history])),
        "final_train_loss": last.train_loss, "final_val_loss": last.val_loss})


def _pattern_count(npz: Path) -> int:
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    return len(MemmapDatasetBridge(npz))


def infer_network(config: StudyConfig, data_dir: Path, run_dir: Path) -> None:
    """recon.npz (object NaN outside coverage, coverage) of the test region, and infer.json (timing)."""
    from ptycho_torch.bundle import load_bundle
    from ptycho_torch.device import DistContext, resolve_device, resolve_precision
    from ptycho_torch.infer import reconstruct, save_recon
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    device = resolve_device(config.train.device, DistContext())
    precision = resolve_precision(config.train.precision, device)
    recon = reconstruct(load_bundle(run_dir / "wts.h5.zip"), MemmapDatasetBridge(data_dir / "test.npz"),
                        device=device, precision=precision)
    save_recon(run_dir / "recon.npz", recon)
    _write_json(run_dir / "infer.json", {"seconds": recon.seconds, "patterns_per_s": recon.patterns_per_s,
                                         "n_patterns": recon.n_patterns, "device": str(device)})


def run_baseline(config: StudyConfig, data_dir: Path, run_dir: Path, log: Callable[[str], None]) -> None:
    """The iterative baseline on the test region's data: recon.npz and baseline.json (timing, fit)."""
    from ptycho_torch.baselines import IterationRecord, reconstruct
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    bridge = MemmapDatasetBridge(data_dir / "test.npz")
    settings = replace(config.baseline, seed=config.seeds.baseline)
    every = max(1, settings.iterations // 5)

    def progress(record: IterationRecord) -> None:
        if record.iteration % every == 0:
            log(f"    iteration {record.iteration}/{settings.iterations}: deviance {record.deviance:.4g}")

    shape = bridge.objectGuess.shape  # type: ignore[union-attr]  # the study's datasets always carry it
    result = reconstruct(bridge.diffraction, np.stack([bridge.xcoords, bridge.ycoords], axis=1),
                         bridge.probeGuess, (int(shape[0]), int(shape[1])), config=settings, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_npz(run_dir / "recon.npz", object=result.masked_object, coverage=result.coverage)
    _write_json(run_dir / "baseline.json", {
        "method": _plain(settings.method), "seconds": result.seconds, "iterations": len(result.history),
        "final_deviance": result.losses[-1], "n_patterns": result.n_patterns,
        "pattern_updates_per_s": result.patterns_per_second, "device": result.device})


def evaluate_unit(settings: EvaluationSpec, data_dir: Path, run_dir: Path, *, with_recon: bool) -> None:
    """metrics.json: metrics.evaluate of run_dir/recon.npz (or of a constant object) on the region."""
    from ptycho_torch import metrics
    from ptycho_torch.evaluate import load_recon
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    truth = MemmapDatasetBridge(data_dir / "test.npz").objectGuess
    with np.load(data_dir / "region.npz", allow_pickle=False) as npz:
        region = npz["region"]
    try:
        if with_recon:
            report = metrics.evaluate(load_recon(run_dir / "recon.npz")[0], truth, mask=region,
                                      fit_scale=settings.fit_scale, remove_ramp=settings.remove_ramp,
                                      register=settings.register)
        else:
            report = metrics.constant_baseline(truth, region, fit_scale=settings.fit_scale,
                                               remove_ramp=settings.remove_ramp)
    except metrics.MetricsError as exc:
        raise StudyError(f"cannot score {run_dir.name}: {exc}") from None
    report["region_px"] = int(region.sum())
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "metrics.json", report)


def baseline_method(config: StudyConfig) -> str:
    return str(_plain(config.baseline.method))


def plan_units(config: StudyConfig, root: Path, invocation: str, log: Callable[[str], None]) -> list[Unit]:
    """Every unit of the study in stage order; nothing runs here (the sources are built, for hashing)."""
    from ptycho_torch import study_report

    sources = load_sources(config)
    conds = conditions(config)
    networks = [network_method(g) for g in config.gridsizes]
    baseline = baseline_method(config)
    train_settings = {k: _plain(v) for k, v in asdict(config.train).items() if k not in ("data", "output_dir")}
    data_settings = asdict(config.data)
    for spec in ("object", "probe"):  # a file's content counts (its hash below), not where it lies
        data_settings[spec].pop("source")
    units: list[Unit] = []
    for c in conds:
        d = c.data_dir
        units.append(Unit("datasets", c.name, {
            "data": data_settings, "dose": c.dose, "overlap": c.overlap, "seed": config.seeds.data,
            "object_sha256": sources.object_sha256, "probe_sha256": sources.probe_sha256}, (),
            (f"{d}/train.npz", f"{d}/test.npz", f"{d}/region.npz"),
            lambda resume, c=c: make_datasets(config, sources, c, root / c.data_dir)))
    for c in conds:
        for g, method in zip(config.gridsizes, networks, strict=True):
            r = c.run_dir(method)
            units.append(Unit(
                "train", f"{c.name}_{method}", {**train_settings, "seed": config.seeds.train, "gridsize": g},
                (f"{c.data_dir}/train.npz",),
                (f"{r}/wts.h5.zip", f"{r}/wts.h5.zip.sha256", f"{r}/history.json", f"{r}/train.json"),
                lambda resume, c=c, g=g, r=r: train_network(config, root / c.data_dir, root / r, g, resume)))
    for c in conds:
        for method in networks:
            r = c.run_dir(method)
            units.append(Unit(
                "infer", f"{c.name}_{method}", {"device": config.train.device, "precision": config.train.precision},
                (f"{r}/wts.h5.zip", f"{c.data_dir}/test.npz"), (f"{r}/recon.npz", f"{r}/infer.json"),
                lambda resume, c=c, r=r: infer_network(config, root / c.data_dir, root / r)))
    for c in conds:
        r = c.run_dir(baseline)
        settings = {k: _plain(v) for k, v in asdict(config.baseline).items()} | {"seed": config.seeds.baseline}
        units.append(Unit(
            "baseline", f"{c.name}_{baseline}", settings, (f"{c.data_dir}/test.npz",),
            (f"{r}/recon.npz", f"{r}/baseline.json"),
            lambda resume, c=c, r=r: run_baseline(config, root / c.data_dir, root / r, log)))
    metric_settings = {**asdict(config.evaluation), "region": f"test illumination >= {COVERAGE_THRESHOLD}"}
    for c in conds:
        for method in [*networks, baseline, CONSTANT]:
            r = c.run_dir(method)
            recon = () if method == CONSTANT else (f"{r}/recon.npz",)
            units.append(Unit(
                "evaluate", f"{c.name}_{method}", metric_settings,
                (*recon, f"{c.data_dir}/test.npz", f"{c.data_dir}/region.npz"), (f"{r}/metrics.json",),
                lambda resume, c=c, r=r, with_recon=bool(recon): evaluate_unit(
                    config.evaluation, root / c.data_dir, root / r, with_recon=with_recon)))
    reads = tuple(rel for u in units for rel in u.writes
                  if rel.endswith((".json", "recon.npz", "test.npz", "region.npz")) and "history" not in rel)
    units.append(Unit(
        "comparison", "report", {"config": config.to_dict(), "template": study_report.template_sha256()},
        reads, study_report.outputs(config),
        lambda resume: study_report.write_comparison(config, root, invocation)))
    return units


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One study process per output folder (an flock on a file that is never deleted)."""
    with open(root / ".study.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(f"another `ptycho-torch study` is running in {root}; wait for it or use "
                             "another --output-dir") from None
        yield


def run_study(config: StudyConfig, output_dir: str | Path, *, invocation: str = "ptycho-torch study",
              log: Callable[[str], None] = print) -> StudyResult:
    """Run (or resume) the whole study in output_dir; see the module docstring."""
    import yaml

    root = Path(output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _locked(root):
        atomic_write_bytes(root / RESOLVED_CONFIG_NAME,
                           yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
        runner = Runner(root, log)
        units = plan_units(config, root, invocation, log)
        log(f"study {config.name!r}: {len(conditions(config))} dose/overlap conditions, {len(units)} units "
            f"in {root}")
        for index, unit in enumerate(units, 1):
            runner.execute(unit, index, len(units))
    seconds = time.perf_counter() - started
    result = StudyResult(root, tuple(runner.ran), tuple(runner.reused), seconds)
    log(summary(result, units))
    return result


def summary(result: StudyResult, units: list[Unit]) -> str:
    stages = list(dict.fromkeys(u.stage for u in units))
    lines = [(f"study finished in {result.seconds:.1f} s: {len(result.ran)} unit(s) ran, "
              f"{len(result.reused)} reused")]
    for stage in stages:
        ran = sum(k.startswith(f"{stage}/") for k in result.ran)
        reused = sum(k.startswith(f"{stage}/") for k in result.reused)
        lines.append(f"  {stage:<10} ran {ran:>3}  reused {reused:>3}")
    if 0 < len(result.ran) <= 12:
        lines.append(f"ran again: {', '.join(result.ran)}")
    lines.append(f"table: {result.output_dir / 'metrics.csv'}; report: {result.output_dir / 'comparison.md'}")
    return "\n".join(lines)


def study_command(*, output_dir: str, config: str | None = None, preset: str | None = None,
                  probe_from: str | None = None) -> int:
    """`ptycho-torch study`: returns 0; errors raise StudyError (exit 1 through the CLI)."""
    study = load_config(config, preset=preset, probe_from=probe_from)
    argv = ["ptycho-torch", "study", *(["--config", config] if config else ["--preset", str(preset)]),
            "--output-dir", output_dir, *(["--probe-from", probe_from] if probe_from else [])]
    run_study(study, output_dir, invocation=shlex.join(argv), log=lambda line: print(line, flush=True))
    return 0
