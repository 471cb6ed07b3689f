from __future__ import annotations

from pathlib import Path

from harness.pytest_run.plugins import OUTCOME_CHANGING, installed_plugins


def installed(site: Path, dist: str, version: str, entry_point: str, module: str) -> None:
    """A distribution's metadata as pip leaves it in site-packages: a dist-info folder with a pytest11
    entry point."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{entry_point} = {module}\n")


def test_plugins_are_listed_by_distribution_with_the_outcome_changing_ones_flagged(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    installed(tmp_path, "pytest-rerunfailures", "14.0", "rerunfailures", "pytest_rerunfailures")
    installed(tmp_path, "pytest-harmless-doctor", "1.0", "harmless", "pytest_harmless")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = {p.distribution: p for p in installed_plugins()}
    rerun = plugins["pytest-rerunfailures"]
    assert rerun.version == "14.0" and rerun.entry_points == ("rerunfailures",)
    assert rerun.changes_outcomes is not None and "rerun" in rerun.changes_outcomes
    assert plugins["pytest-harmless-doctor"].changes_outcomes is None
    assert "xdist" in {ep for p in plugins.values() for ep in p.entry_points}  # this environment's own


def test_the_known_list_names_why_for_each() -> None:
    for name in ("pytest-rerunfailures", "flaky", "pytest-randomly", "pytest-random-order", "pytest-retry"):
        assert OUTCOME_CHANGING[name]
