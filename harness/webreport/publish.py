"""Writing the site: every file goes into a fresh staging folder beside the output folder, which then
replaces the old site by rename, so a reader sees the old site or the new one, never a mix.

Per-file atomic writes with fsync cost about 10 ms each on a busy disk: 5,000 item pages would take a
minute. The staging folder gives the same promise for the whole site at the cost of two renames; its
files are not fsync'd one by one (the site is derived from the repository and rebuilt by one command).
Between the two renames the output folder is briefly absent; `--serve` holds `lock` across them, and its
handler holds it while opening a file.

The output folder is replaced whole, so it must be the report's own: `harness report` refuses a folder that
exists, is not empty and lacks the `.harness-report` marker, and any folder that is or holds the
repository, or lies inside its `.git`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from harness.errors import HarnessError
from harness.webreport.paths import MARKER

lock = threading.Lock()
MARKER_TEXT = "This folder is written by `harness report` and replaced whole at each build.\n"


class ReportError(HarnessError):
    """The report cannot be written where it was asked to go."""


def check_out_dir(out: Path, repo_root: Path) -> Path:
    """The absolute output folder, after checking that replacing it can harm nothing else."""
    out = Path(os.path.abspath(out))
    real_out, real_root = Path(os.path.realpath(out)), Path(os.path.realpath(repo_root))
    if real_out == real_root or real_root.is_relative_to(real_out):
        raise ReportError(f"--out {out} is the repository or holds it; the report folder is replaced whole at "
                          "each build, so give a folder of its own, e.g. plans/report")
    if real_out.is_relative_to(real_root) and ".git" in real_out.relative_to(real_root).parts:
        raise ReportError(f"--out {out} is inside the repository's .git folder; choose another folder")
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; give a folder (it will hold index.html and items/)")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise ReportError(f"--out {out} already holds files that `harness report` did not write (no {MARKER} "
                          "marker); the report replaces its folder whole, so choose a new or empty folder")
    return out


class FolderWriter:
    """Writes files below `folder`, remembering each one's size: the staging folder's writer, and each item
    worker's (harness.webreport.item_pages), which hands its sizes back to the staging folder's."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: set[Path] = {folder}
        self.bytes_written: dict[str, int] = {}

    def write(self, rel: str, data: str | bytes) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path = self.folder / rel
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        with open(path, "wb") as handle:
            handle.write(raw)
        self.bytes_written[rel] = len(raw)


class Staging(FolderWriter):
    """A fresh folder beside `out` to write the new site into; `publish` puts it in `out`'s place."""

    def __init__(self, out: Path) -> None:
        self.out = out
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
        except OSError as exc:
            raise ReportError(f"cannot create the report beside {out}: {exc.strerror or exc}; "
                              "check the folder's permissions or choose another --out") from exc
        super().__init__(folder)

    def publish(self) -> None:
        """Put the staged site in `out`'s place; the old site (if any) is removed after."""
        self.write(MARKER, MARKER_TEXT)
        os.chmod(self.folder, 0o755)  # mkdtemp makes it 0700; the site is meant to be read
        old = None
        with lock:
            if self.out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
                os.replace(self.out, old / "site")
            os.replace(self.folder, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
