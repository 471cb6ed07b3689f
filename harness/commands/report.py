"""`harness report [--out DIR] [--serve [--host H] [--port P]]`: the ledger review as a static web site."""
from __future__ import annotations

import threading
from pathlib import Path

from harness.webreport.build import build_site
from harness.webreport.paths import DEFAULT_OUT
from harness.webreport.serve import DEFAULT_PORT, ReportServer, bind_host
from harness.workspace import open_workspace


def report(*, repo: Path, out: Path | None = None, serve: bool = False, host: str | None = None,
           port: int = DEFAULT_PORT) -> int:
    ws = open_workspace(repo)
    target = out if out is not None else ws.root / DEFAULT_OUT
    if not serve:
        result = build_site(ws, target)
        print(f"wrote {result.pages} page(s) for {result.items} item(s) and {result.attempts} attempt(s) "
              f"to {result.out} in {result.seconds:.1f} s")
        print(f"open {result.out / 'index.html'}")
        return 0
    address = bind_host(host, allow_remote=host is not None)
    server = ReportServer(ws, target, host=address, port=port)
    if not server.loopback:
        print(f"harness report: serving on {address}, beyond this machine: anyone who can reach it can read "
              "the evidence the report links")
    server.start()
    print(f"serving {server.result.items} item(s) at {server.url}; rebuilt when {ws.config.ledger} changes; "
          "Ctrl-C stops")
    try:
        threading.Event().wait()
    finally:
        server.stop()
    return 0
