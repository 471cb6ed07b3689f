"""The README's screenshots of `harness report`, made from this repository's own ledger.

    python docs/report/screenshots.py          # writes docs/report/index.png and docs/report/item.png

Builds the report of this repository into a temporary folder (as `harness report --out DIR` does) and
photographs the index and the first attempt on the page of BASELINES-002 (refused by the integrity gate)
in Debian's headless chromium through playwright (`pip install -e '.[test]'`, `apt-get install chromium`).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from harness.webreport.build import build_site
from harness.workspace import open_workspace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ITEM = "BASELINES-002"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Debian's chromium is needed: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="report-shots-") as tmp:
        result = build_site(open_workspace(ROOT), Path(tmp) / "report")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for page_path, fragment, name in (("index.html", "", "index.png"),
                                              (f"items/{ITEM}.html", "#attempt-1", "item.png")):
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto((result.out / page_path).as_uri() + fragment, wait_until="load")
                page.screenshot(path=str(HERE / name))
                print(f"wrote {HERE / name}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
