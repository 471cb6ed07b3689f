"""The resumable runner: reuse exactly what is current, rerun what changed and what reads it, resume an
interrupted unit, name a failed one."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ptycho_torch.errors import PtychoTorchError, StudyError
from ptycho_torch.study.pipeline import Runner, Unit


class _Toy:
    """Units writing small files, recording which ran and with which resume flag."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, bool]] = []

    def writer(self, name: str, rel: str, text: str, fail: Exception | None = None) -> Callable[[bool], None]:
        def run(resume: bool) -> None:
            self.calls.append((name, resume))
            if fail is not None:
                raise fail
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(text)

        return run

    def units(self, setting: int = 1, text_b: str = "b") -> list[Unit]:
        return [
            Unit("make", "a", {"setting": setting}, (), ("a/out.txt",), self.writer("a", "a/out.txt", f"a{setting}")),
            Unit("make", "c", {}, (), ("c/out.txt",), self.writer("c", "c/out.txt", "c")),
            Unit("use", "b", {}, ("a/out.txt",), ("b/out.txt",), self.writer("b", "b/out.txt", text_b)),
        ]


def _run(root: Path, units: list[Unit], log: list[str] | None = None) -> Runner:
    runner = Runner(root, log=(log if log is not None else []).append)
    for i, unit in enumerate(units, 1):
        runner.execute(unit, i, len(units))
    return runner


def test_runner_reuses_and_reruns_exactly_what_changed(tmp_path: Path) -> None:
    toy = _Toy(tmp_path)
    assert _run(tmp_path, toy.units()).ran == ["make/a", "make/c", "use/b"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["units"]["use/b"]
    assert set(entry["outputs"]) == {"b/out.txt"} and manifest["pending"] == {}
    assert entry["upstream"] == {"a/out.txt": manifest["units"]["make/a"]["outputs"]["a/out.txt"]}
    assert _run(tmp_path, toy.units()).reused == ["make/a", "make/c", "use/b"]

    (tmp_path / "b" / "out.txt").write_text("tampered")  # a modified output: only its unit runs again
    log: list[str] = []
    runner = _run(tmp_path, toy.units(), log)
    assert runner.ran == ["use/b"] and (tmp_path / "b" / "out.txt").read_text() == "b"
    assert "[3/3] use        b: running (b/out.txt was modified)" in log

    (tmp_path / "a" / "out.txt").unlink()  # restored with the same bytes: its reader needs no rerun
    assert _run(tmp_path, toy.units()).ran == ["make/a"]

    log.clear()
    runner = _run(tmp_path, toy.units(setting=2), log)  # a changed config slice: the unit and its reader
    assert runner.ran == ["make/a", "use/b"] and runner.reused == ["make/c"]
    assert any("make       a: running (settings changed)" in line for line in log)
    assert any("use        b: running (inputs changed (a/out.txt))" in line for line in log)


def test_interrupted_unit_resumes_and_failure_names_the_unit(tmp_path: Path) -> None:
    toy = _Toy(tmp_path)
    units = toy.units()
    broken = Unit("use", "b", {}, ("a/out.txt",), ("b/out.txt",),
                  toy.writer("b", "b/out.txt", "b", fail=PtychoTorchError("disk full")))
    with pytest.raises(StudyError, match=r"stage use/b failed: disk full.*run the same command again"):
        _run(tmp_path, [*units[:2], broken])
    assert "use/b" in json.loads((tmp_path / "manifest.json").read_text())["pending"]
    toy.calls.clear()
    _run(tmp_path, units)
    assert toy.calls == [("b", True)]  # same inputs as the interrupted attempt: told to resume

    (tmp_path / "manifest.json").write_text("{not json")
    runner = Runner(tmp_path, log=lambda line: None)
    assert runner.manifest.warning and "every stage runs again" in runner.manifest.warning
