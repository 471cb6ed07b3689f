"""A study's validated settings (StudyConfig and its sections), its conditions and the labels that name
them in file names, tables and figures. load.py builds a StudyConfig from YAML.

File sources: data.object.source and data.probe.source are "synthetic" or the path of an .npz (relative to
the config file's folder). On load the file's SHA256 is filled in (and checked, when the config gives one);
the resolved config (to_dict, study.yaml) records the file by its name and SHA256, never by a path, so a
study folder or a committed report names no machine's directories.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from ptycho_torch.baselines import ReconstructionConfig
from ptycho_torch.metrics import AlignOptions
from ptycho_torch.train.config import TrainConfig

SYNTHETIC = "synthetic"
CONSTANT = "constant"  # the method name of the constant-object reference
NETWORK = "pinn"  # the method name of the network rows trained on the train region (arm "unseen")
NETWORK_SELF = "pinn_self"  # ... and of those trained on the test data itself (arm "self")
METHOD_LABELS = {"pinn": "PtychoPINN unseen", "pinn_self": "PtychoPINN self", "ml": "Poisson ML", "epie": "ePIE",
                 "ptychi-lsqml": "pty-chi LSQML", "constant": "constant object"}
# The network's arms. unseen: trained on the train region, then reconstructs the test region it never saw
# (generalisation). self: trained self-supervised on the test data itself, like the iterative methods, which
# see only the test data (like for like).
ARMS = ("unseen", "self")
ARM_METHODS = {"unseen": NETWORK, "self": NETWORK_SELF}
# The hybrid arm "network + ML": an iterative method started from a network arm's reconstruction; its method
# name joins the two, e.g. "pinn_self_ml" (HybridSpec.method).
METHOD_LABELS |= {f"{ARM_METHODS[arm]}_{method}": f"{METHOD_LABELS[ARM_METHODS[arm]]} + {METHOD_LABELS[method]}"
                  for arm in ARMS for method in ("ml", "epie", "ptychi-lsqml")}
SCANS = ("grid", "random")
# study-level settings, not per-section knobs: the file name, the study's seeds, the grid
TRAIN_FIXED = ("data", "output_dir", "seed", "gridsize", "init_from")  # init_from: a study's continue_from
BASELINE_FIXED = ("seed",)
HYBRID_KEYS = ("arm", "gridsize")  # a hybrid section's own keys; the rest are ReconstructionConfig's


@dataclass(frozen=True)
class FileSource:
    """source: "synthetic" or the path of an .npz; sha256: that file's SHA256 (filled in on load)."""

    source: str = SYNTHETIC
    sha256: str | None = None

    @property
    def is_file(self) -> bool:
        return self.source != SYNTHETIC

    @property
    def recorded(self) -> str:
        """What a resolved config and a report name: "synthetic", or the file's name without its folder."""
        return Path(self.source).name if self.is_file else SYNTHETIC


@dataclass(frozen=True)
class ObjectSpec(FileSource):
    """synthetic: simulate.make_object seeded by seeds.data; a file: its `objectGuess`, centre-cropped to
    data.object_size."""

    feature_px: float = 7.0


@dataclass(frozen=True)
class ProbeSpec(FileSource):
    """synthetic: simulate.make_probe (None: its defaults, the fly64-like ring); a file: its `probeGuess`."""

    aperture_radius_px: float | None = None
    defocus_rad: float | None = None


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

    @property
    def align_options(self) -> AlignOptions:
        """What metrics.evaluate and metrics.align remove, as their options record (registration, when on,
        at its default sub-pixel precision)."""
        return AlignOptions(fit_scale=self.fit_scale, remove_ramp=self.remove_ramp, register=self.register)


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
    baselines: tuple[ReconstructionConfig, ...]  # one iterative reconstruction per method, in table order
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    arms: tuple[str, ...] = ARMS
    base_dir: Path = Path(".")
    hybrid: HybridSpec | None = None  # the "network + ML" arm; None: not run
    # per gridsize, train settings that differ from `train` (e.g. a length giving equal training time)
    train_by_gridsize: dict[int, dict[str, Any]] = field(default_factory=dict)
    # gridsize -> a smaller gridsize whose network (same condition, same arm) starts that gridsize's network
    continue_from: dict[int, int] = field(default_factory=dict)

    def train_for(self, gridsize: int) -> TrainConfig:
        """The trainer's options for the networks of one gridsize: `train` with that gridsize's overrides."""
        return replace(self.train, **self.train_by_gridsize.get(gridsize, {}))

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML-safe plain data, in the layout a config file uses; files by name and SHA256."""
        train = {k: v for k, v in asdict(self.train).items() if k not in TRAIN_FIXED}
        baselines = [{k: plain(v) for k, v in asdict(b).items() if k not in BASELINE_FIXED} for b in self.baselines]
        data = asdict(self.data)
        for spec in ("object", "probe"):
            data[spec]["source"] = getattr(self.data, spec).recorded
        resolved = {"name": self.name, "doses": list(self.doses), "overlaps": dict(self.overlaps),
                    "gridsizes": list(self.gridsizes), "arms": list(self.arms), "seeds": asdict(self.seeds),
                    "data": data, "train": train, "baselines": baselines, "evaluation": asdict(self.evaluation)}
        if self.hybrid is not None:
            settings = asdict(self.hybrid.reconstruction)
            resolved["hybrid"] = {"arm": self.hybrid.arm, "gridsize": self.hybrid.gridsize,
                                  **{k: plain(v) for k, v in settings.items() if k not in BASELINE_FIXED}}
        if self.train_by_gridsize:
            resolved["train_by_gridsize"] = {g: {k: plain(v) for k, v in overrides.items()}
                                             for g, overrides in sorted(self.train_by_gridsize.items())}
        if self.continue_from:
            resolved["continue_from"] = dict(sorted(self.continue_from.items()))
        return resolved


STUDY_DEFAULT_TRAIN = TrainConfig(data="", output_dir="", epochs=10, batch_size=16, n_filters=16, depth=3)
STUDY_DEFAULT_BASELINE = ReconstructionConfig(method="ml", iterations=100, batch_size=64)
STUDY_DEFAULT_HYBRID = ReconstructionConfig(method="ml", iterations=30, batch_size=64, holdout_fraction=0.1)


@dataclass(frozen=True)
class HybridSpec:
    """The "network + ML" arm: `reconstruction` (an iterative method; default Poisson ML, 30 iterations,
    the held-out early stop on a tenth of the patterns) run on the test region's data, started from the
    recon.npz of the network of arm `arm` and gridsize `gridsize` (baselines.start: uncovered pixels filled,
    amplitude scale fitted to the counts)."""

    arm: str = "self"
    gridsize: int = 1
    reconstruction: ReconstructionConfig = STUDY_DEFAULT_HYBRID

    @property
    def network(self) -> Network:
        return Network(self.gridsize, self.arm)

    @property
    def method(self) -> str:
        """The method name of its rows and run folders: the network's and the iterative method's."""
        return f"{ARM_METHODS[self.arm]}_{plain(self.reconstruction.method)}"


def plain(value: Any) -> Any:
    """An enum member's value; anything else as it is (for JSON and YAML)."""
    return value.value if isinstance(value, Enum) else value


def dose_label(dose: float) -> str:
    """1000 -> "1e3", 2500 -> "2.5e3": short, file-name safe, unique to 4 significant digits."""
    mantissa, exponent = f"{dose:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


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


@dataclass(frozen=True)
class Network:
    """One network of each condition: its gridsize, its arm and the folder suffix of its runs."""

    gridsize: int
    arm: str

    @property
    def method(self) -> str:
        return ARM_METHODS[self.arm]

    @property
    def folder(self) -> str:
        """The run folder suffix: gs1 (unseen), gs1_self."""
        return f"gs{self.gridsize}" if self.arm == "unseen" else f"gs{self.gridsize}_{self.arm}"

    def start(self, config: StudyConfig) -> Network | None:
        """The network whose weights this one starts from (continue_from: the same arm at a smaller
        gridsize), or None: it starts from fresh weights."""
        source = config.continue_from.get(self.gridsize)
        return None if source is None else Network(source, self.arm)

    @property
    def train_file(self) -> str:
        """What it trains on, in the condition's data folder."""
        return "train.npz" if self.arm == "unseen" else "test.npz"


def networks(config: StudyConfig) -> list[Network]:
    """Table order: arm by arm, gridsizes ascending within an arm."""
    return [Network(g, arm) for arm in config.arms for g in config.gridsizes]


def baseline_methods(config: StudyConfig) -> list[str]:
    return [str(plain(b.method)) for b in config.baselines]


def hybrid_methods(config: StudyConfig) -> list[str]:
    """The hybrid arm's method name, or none."""
    return [] if config.hybrid is None else [config.hybrid.method]
