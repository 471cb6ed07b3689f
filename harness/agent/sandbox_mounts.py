"""What the sandboxed agent sees: the mounts of its bubblewrap sandbox, planned from the places of one turn.

    /                     ro       the system
    /dev, /proc           dev, proc  a minimal /dev (none of the host's /dev/shm); a /proc of the sandbox's
                                   own processes
    /tmp, $TMPDIR         scratch  empty, private, gone when the agent exits (the harness's temporary
                                   worktrees, RED's and the held-out tests' among them, live there)
    holdout.dir           hidden   an empty folder in its place
    the agent's command   ro       its program, the paths its argv names, the harness's Python
                                   (`{python}`), the PATH and PYTHONPATH folders, where they lie in a place
                                   hidden or replaced above (/dev/shm among them)
    agent.writable        rw       each path listed
    the working tree      rw       the repository, or the parallel worker's worktree
    the git dir(s)        scratch  see below
    the prompt folder     ro       the prompt (and this attempt's agent logs)

The git dir (the common one, and a linked worktree's own) is replaced by an empty private folder into which
each of its entries is mounted again: refs, packed-refs, HEAD, config, hooks, info, logs and the rest
read-only; `index` as a private copy; `objects` as a private folder whose alternate is the repository's
objects, read-only, at `objects.readonly`; the harness's state (`harness/`: journals, lock, staging, the
parallel workers' worktrees) and the other checkouts' git dirs (`worktrees/`) hidden. So the agent's git
reads the repository as it is and `git status`, `diff`, `log`, `add` and `checkout -- FILE` work, while
anything it writes there (an index, objects, a `packed-refs`, a `commondir`) lands in the private folder
and is thrown away: it cannot create, move or delete a ref (`git commit`, `branch`, `tag`, `stash`,
`update-ref` fail with "Read-only file system"), nor change what the harness's own git sees afterwards.
Every path the sandbox mounts is a mount point, which cannot be renamed or removed from inside: an agent
cannot move `.git` or `refs` aside and put its own in their place.

Mounts apply from the outermost path to the innermost (a path's mount before those inside it), so a
deeper rule always wins: a worker's worktree stays visible inside the hidden `harness/` folder, a tree
under /tmp inside the empty /tmp, and a writable path that holds holdout.dir or the git dir still has
them hidden or replaced.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HOW = ("ro", "rw", "hidden", "scratch", "dev", "proc")
DEV = Path("/dev")
READONLY_OBJECTS = "objects.readonly"
_STATE_ENTRY = "harness"  # harness.durability.lock.STATE_DIR: the harness's own state in the git dir
_WORKTREES_ENTRY = "worktrees"
# Which rule wins where two name the same path: a hidden path stays hidden, a replaced one replaced.
_PRECEDENCE = {"rw": 0, "ro": 1, "scratch": 2, "hidden": 3, "dev": 4, "proc": 4}


@dataclass(frozen=True)
class Mount:
    """One path as the agent sees it. `how`: ro, rw, hidden (an empty folder, or an empty file, in its
    place), scratch (private and writable, thrown away with the sandbox: empty, or the copy at `source`),
    dev or proc. `source`: the host path mounted there when it is not `path` itself. `bound` False: the
    path lies in the scratch folder mounted above it (a file git replaces by renaming onto it cannot be a
    mount point of its own)."""

    path: str
    how: str
    what: str
    source: str | None = None
    bound: bool = True
    optional: bool = False  # a git dir entry: gone by the time bwrap mounts it (git's own), it stays away

    def __post_init__(self) -> None:
        if self.how not in HOW:
            raise ValueError(f"mount how must be one of {HOW}, got {self.how!r}")

    def record(self) -> dict:
        """As attempt.json's `sandbox.mounts` lists it (docs/specs/evidence.md)."""
        return {"path": self.path, "how": self.how, "what": self.what}


@dataclass(frozen=True)
class Places:
    """The places of one agent turn, resolved. `git_dir`: the tree's own git dir (a linked worktree's is
    under `common_dir`/worktrees); `holdout`: where holdout.dir may be (none configured: empty)."""

    tree: Path
    git_dir: Path
    common_dir: Path
    prompt_dir: Path
    holdout: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    temp_dirs: tuple[Path, ...] = (Path("/tmp"),)
    readable: tuple[tuple[Path, str], ...] = ()  # (path, why): kept readable where a rule below hides it


def _depth(path: str) -> int:
    return len(Path(path).parts)


def ordered(mounts: Iterable[Mount]) -> list[Mount]:
    """One mount per path (the stronger rule where two name it), outermost first (stable otherwise)."""
    chosen: dict[str, Mount] = {}
    for mount in mounts:
        held = chosen.get(mount.path)
        if held is None or _PRECEDENCE[mount.how] > _PRECEDENCE[held.how]:
            chosen[mount.path] = mount
    return sorted(chosen.values(), key=lambda m: _depth(m.path))


def _git_dir_entries(folder: Path, scratch: Path, *, own_index: bool, what: str) -> list[Mount]:
    """The mounts that rebuild `folder` (a git dir) in a scratch folder: see the module docstring."""
    mounts = [Mount(str(folder), "scratch", what, source=str(scratch))]
    for entry in sorted(os.listdir(folder)):
        path = folder / entry
        if entry.endswith(".lock") or not path.exists():  # git's own, held for a moment; a dangling link
            continue
        if entry == _STATE_ENTRY:
            mounts.append(Mount(str(path), "hidden", "the harness's state: journals, lock, staging, the "
                                "parallel workers' worktrees"))
        elif entry == _WORKTREES_ENTRY:
            mounts.append(Mount(str(path), "hidden", "the git dirs of the other checkouts"))
        elif entry == "index" and own_index:
            try:
                shutil.copy2(path, scratch / entry)
            except FileNotFoundError:  # removed meanwhile: the agent's git starts from no index
                continue
            mounts.append(Mount(str(path), "scratch", "a private copy of the index (`git add` works, its "
                                "changes are thrown away)", bound=False))
        elif entry == "objects":
            mounts += _objects(path, scratch.parent / f"{scratch.name}.objects")
        else:
            mounts.append(Mount(str(path), "ro", f"git's {entry}", optional=True))
    return mounts


def _objects(objects: Path, scratch: Path) -> list[Mount]:
    """A private object folder whose alternate is the repository's objects, mounted read-only beside it."""
    readonly = objects.parent / READONLY_OBJECTS
    (scratch / "info").mkdir(parents=True)
    (scratch / "pack").mkdir()
    alternates = [str(readonly)]
    inherited = objects / "info" / "alternates"
    if inherited.is_file():  # the repository's own alternates, relative ones resolved from their real place
        for line in inherited.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#"):
                alternates.append(str((objects / line.strip()).resolve()))
    (scratch / "info" / "alternates").write_text("\n".join(alternates) + "\n", encoding="utf-8")
    return [Mount(str(objects), "scratch", "a private object store: new objects land here and are thrown "
                  f"away; the repository's are read through its alternate {READONLY_OBJECTS}",
                  source=str(scratch)),
            Mount(str(readonly), "ro", "the repository's objects", source=str(objects))]


def plan_mounts(places: Places, scratch: Path, *, tree_what: str = "the working tree") -> list[Mount]:
    """The mounts of one turn, in the order they apply. Writes the private copies into `scratch` (an empty
    folder of the harness's, outside what the agent sees, removed by the caller afterwards)."""
    mounts = [Mount("/", "ro", "the system"),
              Mount(str(DEV), "dev", "a minimal /dev (null, zero, random, urandom, tty, shm)"),
              Mount("/proc", "proc", "the sandbox's own processes")]
    mounts += [Mount(str(t), "scratch", "an empty temporary folder of its own") for t in places.temp_dirs]
    mounts += [Mount(str(p), "hidden", "the held-out tests (holdout.dir)") for p in places.holdout if p.exists()]
    # A readable path under what the sandbox replaces (the minimal /dev has none of the host's /dev/shm,
    # where an agent script or a checkout may live) is bound back.
    covered = (*places.temp_dirs, *places.holdout, places.common_dir, places.git_dir)
    mounts += [Mount(str(p), "ro", what) for p, what in places.readable if p not in places.writable
               and p.exists() and (any(c == p or c in p.parents for c in covered) or DEV in p.parents)]
    mounts += [Mount(str(p), "rw", "listed in agent.writable") for p in places.writable]
    mounts.append(Mount(str(places.tree), "rw", tree_what))
    dot_git = places.tree / ".git"
    if dot_git.is_file():  # a linked worktree's pointer to its git dir: the harness's git follows it too
        mounts.append(Mount(str(dot_git), "ro", "the worktree's .git file (where its git dir is)"))
    common = scratch / "git-common"
    common.mkdir()
    own = places.git_dir == places.common_dir
    mounts += _git_dir_entries(places.common_dir, common, own_index=own,
                               what="the git dir, rebuilt: reads see the repository, writes are thrown away")
    if not own:
        gitdir = scratch / "git-worktree"
        gitdir.mkdir()
        mounts += _git_dir_entries(places.git_dir, gitdir, own_index=True,
                                   what="this worktree's git dir, rebuilt likewise")
    mounts.append(Mount(str(places.prompt_dir), "ro", "the prompt folder (the prompt and this attempt's "
                        "agent logs)"))
    return ordered(mounts)


def bwrap_args(mounts: Sequence[Mount], *, network: bool, cwd: Path) -> list[str]:
    """bwrap's options for `mounts` (in their order), the namespaces and the working directory; the
    command follows after `--`. The agent's processes live in a pid namespace of their own: when bwrap
    ends (the agent exits, or its group is killed on a timeout) every process in it ends too, even one
    that left the agent's process group."""
    args: list[str] = []
    for m in mounts:
        if not m.bound:
            continue
        if m.how == "dev":
            args += ["--dev", m.path]
        elif m.how == "proc":
            args += ["--proc", m.path]
        elif m.how == "hidden":
            args += ["--ro-bind", os.devnull, m.path] if os.path.isfile(m.path) else ["--tmpfs", m.path]
        elif m.how == "scratch" and m.source is None:
            args += ["--tmpfs", m.path]
        else:
            option = "--ro-bind" if m.how == "ro" else "--bind"
            args += [f"{option}-try" if m.optional else option, m.source or m.path, m.path]
    args += ["--unshare-pid", "--die-with-parent", "--new-session"]
    if not network:
        args.append("--unshare-net")
    return [*args, "--chdir", str(cwd)]
