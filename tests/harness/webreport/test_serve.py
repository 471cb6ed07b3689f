"""`--serve`: loopback unless --host says otherwise, the site and the files it links and nothing else,
evidence as plain text, and a rebuild when the ledger changes."""
from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from harness.webreport.publish import ReportError
from harness.webreport.serve import ReportServer, bind_host
from harness.workspace import open_workspace
from tests.harness.webreport.conftest import Reviewed


def test_only_loopback_unless_the_host_was_given() -> None:
    assert bind_host(None, allow_remote=False) == "127.0.0.1"
    assert bind_host("localhost", allow_remote=False) == "127.0.0.1"
    assert bind_host("::1", allow_remote=False) == "::1"
    with pytest.raises(ReportError, match="not a loopback address"):
        bind_host("0.0.0.0", allow_remote=False)
    with pytest.raises(ReportError, match="not a loopback address"):
        bind_host("192.0.2.7", allow_remote=False)
    assert bind_host("0.0.0.0", allow_remote=True) == "0.0.0.0"
    with pytest.raises(ReportError, match="not an IP address"):
        bind_host("example.invalid", allow_remote=True)


@pytest.fixture
def server(reviewed: Reviewed) -> Iterator[ReportServer]:
    said: list[str] = []
    running = ReportServer(open_workspace(reviewed.repo), reviewed.site, host="127.0.0.1", port=0, interval=0.1,
                           say=said.append)
    running.said = said
    running.start()
    try:
        yield running
    finally:
        running.stop()


def get(server: ReportServer, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(server.url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    headers = {"Host": host} if host else {}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def test_the_site_and_its_evidence_are_served(server: ReportServer, reviewed: Reviewed) -> None:
    assert server.url.endswith("/plans/report/index.html")
    status, headers, _ = get(server, "/")
    assert status == 302 and headers["Location"] == "/plans/report/index.html"
    status, headers, body = get(server, "/plans/report/index.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and b"CALC-002" in body
    assert headers["X-Content-Type-Options"] == "nosniff" and "default-src 'none'" in headers[
        "Content-Security-Policy"]
    summary = next(reviewed.repo.glob("plans/active/CALC-INIT/reports/*/*/analysis/summary.md"))
    status, headers, body = get(server, "/" + summary.relative_to(reviewed.repo).as_posix())
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8" and body.startswith(b"# [CALC-001]")


@pytest.mark.parametrize("path", ["/harness.yaml", "/.git/config", "/pkg/calc.py", "/docs/fix_plan.md",
                                  "/plans/report/../../harness.yaml", "/plans/report/.harness-report",
                                  "/plans/report/%2e%2e/%2e%2e/harness.yaml", "/../../../etc/passwd"])
def test_nothing_else_of_the_repository_is_served(server: ReportServer, path: str) -> None:
    status, _, body = get(server, path)
    assert status == 404, body


def test_requests_for_another_host_are_refused(server: ReportServer) -> None:
    status, _, body = get(server, "/plans/report/index.html", host="attacker.example:80")
    assert status == 421 and b"localhost only" in body
    assert get(server, "/plans/report/index.html", host="localhost:1234")[0] == 200


def test_a_ledger_change_rebuilds_the_site(server: ReportServer, reviewed: Reviewed) -> None:
    ledger = reviewed.repo / "docs/fix_plan.md"
    ledger.write_text(ledger.read_text() + "\n## [NEW-001] Added while serving\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("rebuilt" in line for line in server.said):
        time.sleep(0.1)
    assert b"Added while serving" in get(server, "/plans/report/items/NEW-001.html")[2]
    assert any(line.startswith("harness report: rebuilt 4 item(s)") for line in server.said)


def test_a_broken_ledger_keeps_the_old_site(server: ReportServer, reviewed: Reviewed) -> None:
    ledger = reviewed.repo / "docs/fix_plan.md"
    ledger.write_text(ledger.read_text() + "\n## not an item heading\n")
    assert server.rebuild_if_changed() is False
    assert "not rebuilt, the old site stays" in server.said[-1] and "not an item heading" in server.said[-1]
    assert get(server, "/plans/report/index.html")[0] == 200


def test_a_port_in_use_is_named(server: ReportServer, reviewed: Reviewed) -> None:
    taken = int(urlsplit(server.url).port)
    with pytest.raises(ReportError, match=f"cannot listen on 127.0.0.1 port {taken}: .*pass another --port"):
        ReportServer(open_workspace(reviewed.repo), reviewed.site, host="127.0.0.1", port=taken)
