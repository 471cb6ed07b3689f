"""The resumable pipeline: a study is a list of units, each a resumable piece of a stage, run in order.

manifest.json records every unit's inputs hash (the hash of its config slice and of the SHA256 of each
upstream file it reads) and the SHA256 of each output. A unit is reused when its inputs hash matches and
every output is present and unchanged; otherwise it runs again, and so, through the hashes, does whatever
reads its outputs. A unit started and not finished stays `pending`: run again with the same inputs, it is
told to resume (an interrupted training continues from its checkpoint).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.bundle import sha256_file
from ptycho_torch.errors import PtychoTorchError, StudyError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "ptycho_torch-study-manifest/1"


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
