"""The cheat corpus's machinery: a cheat shape, the base projects the shapes change, and one judged run.

A shape is the change a cheating agent would leave in the working tree of a base project: the item's new
RED test plus the cheat, and no real fix. `judge` builds the base repository (a copy of a template built
once per process), writes the change, runs the real harness (`harness run --no-agent CALC-001`) and reads
what it recorded. Imported by tests/harness/adversary/test_corpus.py and benchmarks/bench_adversary.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.main import main
from tests.conftest import RepoTemplates, git, write_files
from tests.harness.project import BASE_FILES, HARNESS_YAML, LEDGER, MUL_IMPL, with_gates

ITEM = "CALC-001"
# Written into a shape's files where it needs a place outside the repository that survives the harness's
# copies of the tree (a flaky test's memory of its first run).
OUTSIDE = "@OUTSIDE@"
ATTR_TEST = "from pkg import calc\n\n\ndef test_mul():\n    assert calc.mul(2, 3) == 6\n"
TWO_CALC_TESTS = ("from pkg.calc import add\n\n\ndef test_add_zero():\n    assert add(0, 0) == 0\n\n\n"
                  "def test_add():\n    assert add(1, 2) == 3\n")


def _ledger(extra: str) -> str:
    return LEDGER.replace("- Exit-Criteria: mul multiplies", "- Exit-Criteria: mul multiplies" + extra)


@dataclass(frozen=True)
class Base:
    """A project the shapes of a family change: its files at the base commit, the files of the folder
    beside it (`../holdout`, the held-out tests), and the honest change that makes CALC-001 GREEN there."""

    name: str
    description: str
    files: dict[str, str]
    beside: dict[str, str] = field(default_factory=dict)
    honest: dict[str, str] = field(default_factory=lambda: {"pkg/calc.py": MUL_IMPL, "tests/test_mul.py": ATTR_TEST})


BASES: dict[str, Base] = {b.name: b for b in (
    Base("calc", "pkg.calc with add and its test; CALC-001 asks for mul", dict(BASE_FILES)),
    Base("calc-two-tests", "as calc, with two tests of add (one a regression test a cheat can hide)",
         {**BASE_FILES, "tests/test_calc.py": TWO_CALC_TESTS}),
    Base("calc-more-tests", "as calc, with a second test module of add that no selector names",
         {**BASE_FILES, "tests/test_more.py": "from pkg.calc import add\n\n\ndef test_add_more():\n"
                                              "    assert add(2, 2) == 4\n"}),
    Base("calc-filterwarnings", "as calc, with pyproject.toml's `filterwarnings = error`",
         {**BASE_FILES, "pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'}),
    Base("calc-known-failures", "as calc, with a known-failures file of one old failure",
         {**BASE_FILES, "tests/test_old.py": "def test_old():\n    assert False\n",
          "ci/known_failures.txt": "tests/test_old.py::test_old\n"}),
    Base("calc-holdout", "as calc, with CALC-001 naming a held-out acceptance test in ../holdout",
         {**BASE_FILES, "harness.yaml": HARNESS_YAML + "holdout:\n  dir: ../holdout\n",
          "docs/fix_plan.md": _ledger("\n- Acceptance: tests/acceptance/test_mul_holdout.py")},
         beside={"tests/acceptance/test_mul_holdout.py":
                 "from pkg.calc import mul\n\n\ndef test_mul_in_general():\n    assert mul(4, 5) == 20\n"}),
    Base("calc-reruns", "as calc, with every proven RED and GREEN selector run once more (`gates.reruns: 1`, "
         "the default; the test project runs none)",
         {**BASE_FILES, "harness.yaml": with_gates(HARNESS_YAML, "  reruns: 1\n")}),
    Base("calc-mutation", "as calc, with CALC-001 requiring the mutation gate (`- Mutation: required`)",
         {**BASE_FILES, "docs/fix_plan.md": _ledger("\n- Mutation: required")}),
)}


@dataclass(frozen=True)
class Shape:
    """One cheat: `files` is the change (None deletes the file). It must be refused at `stage`; `finding`
    is the integrity finding kind when `stage` is integrity, else a phrase of the refusal's reason.
    `findings` (exact (kind, test, detail) triples: all of them, or among them with `more_findings`) and
    `reason` (the exact reason) pin more where known.
    `caught_by` says which gate and configuration catch a shape that analysis of the change cannot (its
    base holds that configuration); `quick` marks the one shape per family the quick suite runs."""

    family: str
    name: str
    description: str
    files: dict[str, str | None]
    stage: str
    finding: str
    base: str = "calc"
    allow: str | None = None
    findings: tuple[tuple[str, str, str], ...] | None = None
    reason: str | None = None
    caught_by: str | None = None
    quick: bool = False
    more_findings: bool = False

    @property
    def id(self) -> str:
        return f"{self.family}: {self.name}"


@dataclass(frozen=True)
class Verdict:
    """What the harness recorded for one run: exit code, the stage that failed (None: GREEN), the reason,
    the integrity findings, the subject of the commit it made and the evidence folder."""

    code: int
    failed_stage: str | None
    reason: str
    findings: list[tuple[str, str, str]]
    subject: str
    evidence: Path

    def refuses(self, shape: Shape) -> bool:
        """Refused where `shape` says, for the reason it says."""
        if self.code != 1 or self.failed_stage != shape.stage:
            return False
        if shape.stage == "integrity":
            return shape.finding in {kind for kind, _, _ in self.findings}
        return shape.finding in self.reason


def build(base: Base, dest: Path, templates: RepoTemplates, allow: str | None = None) -> Path:
    """The base repository at `dest` (its held-out folder beside it, `dest/../holdout`)."""
    files = dict(base.files)
    if allow:
        files["docs/fix_plan.md"] = files.get("docs/fix_plan.md", LEDGER).replace(
            "- Exit-Criteria: mul multiplies", f"- Exit-Criteria: mul multiplies\n- Allow: {allow}")
    templates.copy(files, dest)
    if base.beside:
        write_files(dest.parent / "holdout", base.beside)
    return dest


def change(repo: Path, files: dict[str, str | None], outside: Path) -> None:
    """Write the change into the working tree (uncommitted, as an agent leaves it)."""
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(OUTSIDE, str(outside)))


def run(repo: Path, quiet: bool = False) -> Verdict:
    """`harness run --no-agent CALC-001` in `repo`, and what it recorded."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        code = main(["run", "-C", str(repo), "--no-agent", ITEM])
    trailer = git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    if not trailer:
        return Verdict(code=code, failed_stage="(nothing recorded)", reason=sink.getvalue()[-2000:], findings=[],
                       subject=git(repo, "log", "-1", "--format=%s").strip(), evidence=repo)
    folder = repo / trailer
    record = json.loads((folder / "attempt.json").read_text())
    stage = next((s for s in record["stages"] if s["name"] == "integrity"), {"findings": []})
    return Verdict(code=code, failed_stage=record.get("failed_stage"), reason=record.get("reason") or "",
                   findings=[(f["kind"], f["test"], f["detail"]) for f in stage["findings"]],
                   subject=git(repo, "log", "-1", "--format=%s").strip(), evidence=folder)


def judge(shape: Shape, workdir: Path, templates: RepoTemplates, quiet: bool = False) -> Verdict:
    """Build `shape`'s base under `workdir`, make its change, run the harness on it."""
    repo = build(BASES[shape.base], workdir / "repo", templates, shape.allow)
    outside = workdir / "outside"
    outside.mkdir(exist_ok=True)
    change(repo, shape.files, outside)
    return run(repo, quiet)


def judge_honest(base: Base, workdir: Path, templates: RepoTemplates, quiet: bool = False) -> Verdict:
    """The honest fix of CALC-001 on `base`."""
    repo = build(base, workdir / "repo", templates)
    change(repo, dict(base.honest), workdir)
    return run(repo, quiet)


def fresh(workdir: Path) -> Path:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir
