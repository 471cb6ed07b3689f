from __future__ import annotations

from harness.errors import ExitCode
from harness.main import main
from tests.harness.project import make_project
from tests.harness.webreport.links import broken_links


def test_report_writes_the_site_to_the_default_folder_or_out(make_repo, tmp_path, capsys) -> None:
    repo = make_project(make_repo)
    assert main(["report", "-C", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "wrote 4 page(s) for 2 item(s) and 0 attempt(s)" in out
    assert (repo / "plans/report/index.html").is_file() and (repo / "plans/report/items/CALC-002.html").is_file()
    assert main(["report", "-C", str(repo), "--out", str(tmp_path / "elsewhere")]) == 0
    assert broken_links(tmp_path / "elsewhere") == []


def test_report_refuses_a_folder_it_did_not_write(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    assert main(["report", "-C", str(repo), "--out", str(repo / "tests")]) == ExitCode.ERROR
    assert "did not write (no .harness-report marker)" in capsys.readouterr().err
    assert (repo / "tests/test_calc.py").is_file()


def test_report_serve_names_a_bad_host_or_port(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    assert main(["report", "-C", str(repo), "--serve", "--host", "my-laptop"]) == ExitCode.ERROR
    assert "--host 'my-laptop' is not an IP address" in capsys.readouterr().err
    try:
        main(["report", "-C", str(repo), "--serve", "--port", "70000"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "expected a port from 0 to 65535, got 70000" in capsys.readouterr().err
