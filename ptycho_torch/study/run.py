"""`ptycho-torch study`: lay the study out as units (pipeline.py) and run them, one process per folder.

    ptycho-torch study --preset smoke --output-dir OUT
    ptycho-torch study --config study.yaml --output-dir OUT [--probe-from probe.npz]

The command is recorded (in comparison.md) with every absolute path reduced to its name and the probe file
by its name (its SHA256 is in study.yaml and the report): a study folder names no machine's directories.
"""
from __future__ import annotations

import fcntl
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import StudyError
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.study.config import (
    CONSTANT,
    StudyConfig,
    baseline_methods,
    conditions,
    hybrid_methods,
    networks,
    plain,
)
from ptycho_torch.study.load import load_config
from ptycho_torch.study.pipeline import Runner, Unit
from ptycho_torch.study.report import outputs, template_sha256, write_comparison
from ptycho_torch.study.sources import load_sources
from ptycho_torch.study.stages import (
    INFER_FLAT_FIELD,
    evaluate_unit,
    infer_network,
    make_datasets,
    run_baseline,
    train_network,
)

RESOLVED_CONFIG_NAME = "study.yaml"


@dataclass(frozen=True)
class StudyResult:
    output_dir: Path
    ran: tuple[str, ...]  # unit keys, in run order
    reused: tuple[str, ...]
    seconds: float


def train_settings(config: StudyConfig, gridsize: int) -> dict[str, Any]:
    """The settings a training unit of that gridsize depends on: its TrainConfig less the paths (the same
    dict, so the same unit, whether a length comes from `train` or from `train_by_gridsize`)."""
    return {k: plain(v) for k, v in asdict(config.train_for(gridsize)).items() if k not in ("data", "output_dir")}


def plan_units(config: StudyConfig, root: Path, invocation: str, log: Callable[[str], None]) -> list[Unit]:
    """Every unit of the study in stage order; nothing runs here (the sources are built, for hashing)."""
    sources = load_sources(config)
    conds = conditions(config)
    nets = networks(config)
    data_settings = asdict(config.data)
    for spec in ("object", "probe"):  # a file's content counts (its array's hash below), not where it lies
        data_settings[spec].pop("source")
        data_settings[spec].pop("sha256")
    units: list[Unit] = []
    for c in conds:
        d = c.data_dir
        units.append(Unit("datasets", c.name, {
            "data": data_settings, "dose": c.dose, "overlap": c.overlap, "seed": config.seeds.data,
            "object_sha256": sources.object_sha256, "probe_sha256": sources.probe_sha256}, (),
            (f"{d}/train.npz", f"{d}/test.npz", f"{d}/region.npz"),
            lambda resume, c=c: make_datasets(config, sources, c, root / c.data_dir)))
    for c in conds:
        for net in nets:  # a network comes after the one it starts from (a smaller gridsize of its arm)
            r, data, start = c.run_dir(net.folder), f"{c.data_dir}/{net.train_file}", net.start(config)
            settings = {**train_settings(config, net.gridsize), "seed": config.seeds.train, "gridsize": net.gridsize}
            reads: tuple[str, ...] = (data,)
            start_dir = None
            if start is not None:  # its weights are an input: a new start trains this network again
                start_dir = c.run_dir(start.folder)
                settings["continue_from"] = start.gridsize
                reads += (f"{start_dir}/wts.h5.zip", f"{start_dir}/train.json")
            units.append(Unit(
                "train", f"{c.name}_{net.folder}", settings, reads,
                (f"{r}/wts.h5.zip", f"{r}/wts.h5.zip.sha256", f"{r}/history.json", f"{r}/train.json"),
                lambda resume, data=data, g=net.gridsize, r=r, start_dir=start_dir: train_network(
                    config, root / data, root / r, g, resume, start=None if start_dir is None else root / start_dir)))
    for c in conds:
        for net in nets:
            r = c.run_dir(net.folder)
            units.append(Unit(
                "infer", f"{c.name}_{net.folder}",
                {"device": config.train.device, "precision": config.train.precision,
                 "flat_field": INFER_FLAT_FIELD},
                (f"{r}/wts.h5.zip", f"{c.data_dir}/test.npz"), (f"{r}/recon.npz", f"{r}/infer.json"),
                lambda resume, c=c, r=r: infer_network(config, root / c.data_dir, root / r)))
    for c in conds:
        for settings, method in zip(config.baselines, baseline_methods(config), strict=True):
            r = c.run_dir(method)
            units.append(Unit(
                "baseline", f"{c.name}_{method}",
                {k: plain(v) for k, v in asdict(settings).items()} | {"seed": config.seeds.baseline},
                (f"{c.data_dir}/test.npz",), (f"{r}/recon.npz", f"{r}/baseline.json"),
                lambda resume, c=c, r=r, settings=settings: run_baseline(
                    config, settings, root / c.data_dir, root / r, log)))
    if config.hybrid is not None:
        hybrid = config.hybrid
        for c in conds:
            r, start = c.run_dir(hybrid.method), f"{c.run_dir(hybrid.network.folder)}/recon.npz"
            units.append(Unit(
                "hybrid", f"{c.name}_{hybrid.method}",
                {k: plain(v) for k, v in asdict(hybrid.reconstruction).items()}
                | {"seed": config.seeds.baseline, "arm": hybrid.arm, "gridsize": hybrid.gridsize},
                (f"{c.data_dir}/test.npz", start), (f"{r}/recon.npz", f"{r}/baseline.json"),
                lambda resume, c=c, r=r, start=start: run_baseline(
                    config, hybrid.reconstruction, root / c.data_dir, root / r, log, init_from=root / start)))
    metric_settings = {**asdict(config.evaluation), "region": f"test illumination >= {COVERAGE_THRESHOLD}"}
    for c in conds:
        for method in [*(net.folder for net in nets), *baseline_methods(config), *hybrid_methods(config), CONSTANT]:
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
        "comparison", "report", {"config": config.to_dict(), "template": template_sha256()},
        reads, outputs(config), lambda resume: write_comparison(config, root, invocation)))
    return units


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One study process per output folder (an flock on a file that is never deleted)."""
    with open(root / ".study.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(f"another `ptycho-torch study` is running in {root}; wait for it or use "
                             "another --output-dir") from None
        yield


def write_resolved_config(config: StudyConfig, root: Path) -> Path:
    """study.yaml: the config with every default filled in, files by name and SHA256 (StudyConfig.to_dict)."""
    path = root / RESOLVED_CONFIG_NAME
    atomic_write_bytes(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    return path


def run_study(config: StudyConfig, output_dir: str | Path, *, invocation: str = "ptycho-torch study",
              log: Callable[[str], None] = print) -> StudyResult:
    """Run (or resume) the whole study in output_dir; see the package docstring."""
    root = Path(output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with locked(root):
        write_resolved_config(config, root)
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


def recorded_command(*, output_dir: str, config: str | None = None, preset: str | None = None,
                     probe_from: str | None = None) -> str:
    """The command line as comparison.md records it: relative paths as given, absolute ones by their name,
    the probe file by its name."""

    def shown(path: str) -> str:
        return Path(path).name if Path(path).is_absolute() else path

    argv = ["ptycho-torch", "study", *(["--config", shown(config)] if config else ["--preset", str(preset)]),
            "--output-dir", shown(output_dir), *(["--probe-from", Path(probe_from).name] if probe_from else [])]
    return shlex.join(argv)


def study_command(*, output_dir: str, config: str | None = None, preset: str | None = None,
                  probe_from: str | None = None) -> int:
    """`ptycho-torch study`: returns 0; errors raise StudyError (exit 1 through the CLI)."""
    study = load_config(config, preset=preset, probe_from=probe_from)
    invocation = recorded_command(output_dir=output_dir, config=config, preset=preset, probe_from=probe_from)
    run_study(study, output_dir, invocation=invocation, log=lambda line: print(line, flush=True))
    return 0
