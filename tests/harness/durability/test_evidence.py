from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness.durability import evidence
from harness.errors import EvidenceError


def test_the_evidence_folder_of_an_attempt_line_is_the_summary_s_grandparent() -> None:
    folder = "plans/active/INIT/reports/2025-01-01T000000Z/slug"
    assert evidence.evidence_folder_of(f"{folder}/analysis/summary.md") == folder
    assert evidence.evidence_folder_of(folder) == folder
    assert evidence.evidence_folder_of("x/summary.md") == "x/summary.md"


def test_evidence_dir_layout_and_never_reused(tmp_path: Path) -> None:
    first = evidence.evidence_dir(tmp_path, "plans/active", "fly64", "ITEM-3", "2025-11-06T084500Z")
    assert first == tmp_path / "plans/active/fly64/reports/2025-11-06T084500Z/ITEM-3"
    assert first.is_dir()
    second = evidence.evidence_dir(tmp_path, "plans/active", "fly64", "ITEM-3", "2025-11-06T084500Z")
    third = evidence.evidence_dir(tmp_path, "plans/active", "fly64", "ITEM-3", "2025-11-06T084500Z")
    assert second.parent.name == "2025-11-06T084500Z-2" and third.parent.name == "2025-11-06T084500Z-3"
    # Another slug in the same stamp folder is a different folder, not a reuse.
    other = evidence.evidence_dir(tmp_path, "plans/active", "fly64", "ITEM-4", "2025-11-06T084500Z")
    assert other == first.parent / "ITEM-4"


@pytest.mark.parametrize(
    ("root", "initiative", "slug", "match"),
    [
        ("/abs", "i", "s", "repo-relative"),
        ("../up", "i", "s", "repo-relative"),
        ("plans", "../x", "s", "initiative"),
        ("plans", "i", "a/b", "slug"),
        ("plans", "i", ".hidden", "slug"),
        ("plans", "i", "", "slug"),
    ],
)
def test_evidence_dir_rejects_unsafe_names(
    tmp_path: Path, root: str, initiative: str, slug: str, match: str
) -> None:
    with pytest.raises(EvidenceError, match=match):
        evidence.evidence_dir(tmp_path, root, initiative, slug, "2025-11-06T084500Z")


def test_compress_large_files_gzips_reproducibly(tmp_path: Path) -> None:
    payload = b"<testsuite>" + b"x" * 5000 + b"</testsuite>"
    outputs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        (folder / "junit").mkdir(parents=True)
        (folder / "junit" / "full.xml").write_bytes(payload)
        (folder / "small.log").write_bytes(b"tiny")
        os.utime(folder / "junit" / "full.xml", (1_000_000 * len(name), 1_000_000 * len(name)))
        assert evidence.compress_large_files(folder, 1000) == ["junit/full.xml"]
        assert not (folder / "junit" / "full.xml").exists() and (folder / "small.log").read_bytes() == b"tiny"
        gz = folder / "junit" / "full.xml.gz"
        assert gzip.decompress(gz.read_bytes()) == payload
        assert gz.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime field
        outputs.append(gz.read_bytes())
        assert evidence.compress_large_files(folder, 1000) == []  # .gz files are not compressed again
    assert outputs[0] == outputs[1]


def _folder_with_files(tmp_path: Path) -> Path:
    folder = tmp_path / "ev"
    (folder / "logs").mkdir(parents=True)
    (folder / "summary.md").write_text("# summary\n")
    (folder / "logs" / "pytest red.log").write_text("FAILED\n")
    (folder / "logs" / "b.bin").write_bytes(bytes(range(256)))
    return folder


def test_write_sha256sums_is_accepted_by_sha256sum_c(tmp_path: Path) -> None:
    folder = _folder_with_files(tmp_path)
    sums = evidence.write_sha256sums(folder)
    lines = sums.read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["logs/b.bin", "logs/pytest red.log", "summary.md"]
    assert all(len(line.split("  ", 1)[0]) == 64 for line in lines)
    proc = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert evidence.verify_sha256sums(folder) == []
    # Rewriting after a change picks up the new state instead of listing itself.
    (folder / "extra.txt").write_text("x\n")
    evidence.write_sha256sums(folder)
    assert "SHA256SUMS" not in sums.read_text() and evidence.verify_sha256sums(folder) == []


def test_verify_sha256sums_reports_each_kind_of_problem(tmp_path: Path) -> None:
    folder = _folder_with_files(tmp_path)
    assert evidence.verify_sha256sums(folder) == [f"SHA256SUMS is missing in {folder}"]
    evidence.write_sha256sums(folder)
    (folder / "summary.md").write_text("# edited\n")
    (folder / "logs" / "b.bin").unlink()
    (folder / "new.txt").write_text("extra\n")
    problems = evidence.verify_sha256sums(folder)
    assert problems == [
        "missing: logs/b.bin is listed in SHA256SUMS but does not exist",
        "checksum mismatch: summary.md was changed after SHA256SUMS was written",
        "not listed: new.txt is not in SHA256SUMS",
    ]
    proc = subprocess.run(
        ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, capture_output=True, check=False
    )
    assert proc.returncode != 0


def test_render_template_strict_and_whitespace_controlled(tmp_path: Path) -> None:
    (tmp_path / "summary.md.j2").write_text(
        "# {{ item }}\n{% for n in nodes %}\n- {{ n }}\n{% endfor %}\n"
    )
    text = evidence.render_template("summary.md.j2", search_path=tmp_path, item="ITEM-1", nodes=["a", "b"])
    assert text == "# ITEM-1\n- a\n- b\n"
    with pytest.raises(EvidenceError, match="'nodes' is undefined"):
        evidence.render_template("summary.md.j2", search_path=tmp_path, item="x")
    with pytest.raises(EvidenceError, match="not found"):
        evidence.render_template("nope.j2", search_path=tmp_path)
    assert evidence.TEMPLATES_DIR.is_dir() and evidence.TEMPLATES_DIR.parent.name == "harness"


def test_machine_paths_become_placeholders_only_where_a_path_component_ends(tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    (folder / "red").mkdir(parents=True)
    root = "/home/someone/project"
    (folder / "red" / "red-1.command.txt").write_text(
        f"cwd: {root}\n/opt/py/bin/python -m pytest --junitxml={root}/.git/x.xml {root}-other/y\n")
    (folder / "attempt.json").write_text(json.dumps({"root": root, "tmp": "/var/tmp/harness-wt-1/main"}))
    (folder / "data.bin").write_bytes(root.encode())
    prefixes = [(root, "<repo>"), ("/opt/py", "<python>"), ("/var/tmp", "<tmp>")]
    changed = evidence.redact_machine_paths(folder, sorted(prefixes, key=lambda p: -len(p[0])))
    assert sorted(changed) == ["attempt.json", "red/red-1.command.txt"]
    assert (folder / "red" / "red-1.command.txt").read_text() == (
        "cwd: <repo>\n<python>/bin/python -m pytest --junitxml=<repo>/.git/x.xml /home/someone/project-other/y\n")
    assert json.loads((folder / "attempt.json").read_text()) == {"root": "<repo>", "tmp": "<tmp>/harness-wt-1/main"}
    assert (folder / "data.bin").read_bytes() == root.encode()  # only text files are rewritten


def test_redacted_junit_xml_is_still_xml_and_reads_back_as_the_placeholder(tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    wt = "/var/tmp/harness-wt-1/main"
    (folder / "full_suite.junit.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">'
        f'<testcase classname="tests.test_x" name="test_a" file="{wt}/tests/test_x.py">'
        f'<skipped message="needs a GPU">{wt}/tests/test_x.py:3: needs a GPU</skipped>'
        '</testcase></testsuite></testsuites>')
    assert evidence.redact_machine_paths(folder, [("/var/tmp", "<tmp>")]) == ["full_suite.junit.xml"]
    case = ElementTree.parse(folder / "full_suite.junit.xml").getroot().find("testsuite/testcase")
    assert case.get("file") == "<tmp>/harness-wt-1/main/tests/test_x.py"
    assert case.find("skipped").text == "<tmp>/harness-wt-1/main/tests/test_x.py:3: needs a GPU"


def test_the_prefixes_cover_the_repository_the_interpreter_and_the_temp_dir(tmp_path: Path) -> None:
    prefixes = dict(evidence.machine_prefixes(tmp_path))
    assert prefixes[str(tmp_path)] == "<repo>" and prefixes[sys.prefix] == "<python>"
    assert prefixes[tempfile.gettempdir()] == "<tmp>"
    lengths = [len(p) for p, _ in evidence.machine_prefixes(tmp_path)]
    assert lengths == sorted(lengths, reverse=True)  # the repository (inside the temp dir) is matched first
