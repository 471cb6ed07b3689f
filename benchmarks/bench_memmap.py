"""Benchmark of the memory-mapped NPZ bridge against the old `np.load(mmap_mode="r") + astype` loader.

    python benchmarks/bench_memmap.py     # ~2 GiB dataset (+ a 1/4-size one), appends to RESULTS.md
    python benchmarks/bench_memmap.py --size-gib 0.5 --no-write

Measures, each open in a fresh subprocess (so RSS is not shared between methods):
1. open time and RSS after open at two sizes, for the uncompressed NPZ and its compressed twin, ours vs old;
2. random-batch gather throughput (B = 64 patterns) through PtychoDataset vs a raw np.memmap of the same
   bytes (warm page cache; both read the same sorted index batches);
3. one DataLoader epoch (2 workers) over the big file in a process whose private memory is capped below
   the data size with RLIMIT_DATA, and the old loader under the same cap as a control.
RLIMIT_AS cannot be used: it counts address space, and mapping the file counts in full. RLIMIT_DATA counts
private writable memory (heap, anonymous maps; Linux >= 4.7) and not read-only file maps, which is the
claim under test: the data stays in the (reclaimable, shared) page cache, never in private memory.
Linux only (/proc). Timings are noisy on shared machines; ratios are taken within one run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

MiB = 2**20
N_PIX = 64
BATCH = 64
HERE = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------ data

def proc_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, VmHWM (peak RSS), RssAnon (private), RssFile (file pages mapped) in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) / 1024
    return out


def make_files(workdir: Path, n: int, tag: str, tile: np.ndarray) -> dict[str, Path]:
    """An uncompressed NPZ of n patterns (a simulated tile repeated) and its compressed twin."""
    from ptycho_torch.simulate import make_probe, scan_positions

    x, y, _ = scan_positions(n, N=N_PIX, overlap=0.7)
    small = {"xcoords": x, "ycoords": y, "probeGuess": make_probe(N_PIX), "nphotons": np.array(1e4)}
    paths = {}
    for compress in (False, True):
        path = workdir / f"{tag}{'_z' if compress else ''}.npz"
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        # level 1 only to save time here; the reader's work does not depend on the level
        with zipfile.ZipFile(path, "w", compression=method, compresslevel=1 if compress else None) as zf:
            for key, value in small.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fp:
                    np.lib.format.write_array(fp, value, allow_pickle=False)
            with zf.open("diffraction.npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array_header_1_0(
                    fp, {"descr": "<f4", "fortran_order": False, "shape": (n, N_PIX, N_PIX)})
                for k0 in range(0, n, len(tile)):
                    fp.write(tile[: min(len(tile), n - k0)].tobytes())
        paths["compressed" if compress else "uncompressed"] = path
    return paths


# ---------------------------------------------------------------------------------------- children

def child_open(method: str, path: str, cache_dir: str) -> dict[str, object]:
    import ptycho_torch.memmap_bridge as mb

    t0 = time.perf_counter()
    if method == "baseline":
        arr = None
    elif method == "ours":
        bridge = mb.MemmapDatasetBridge(path, cache_dir=cache_dir)
        arr = bridge.diffraction
    elif method == "old":
        arr = np.load(path, mmap_mode="r")["diffraction"].astype(np.float32)
    else:
        raise SystemExit(f"unknown method {method}")
    elapsed = time.perf_counter() - t0
    status = proc_status()
    reopen = []
    for _ in range(10 if method == "ours" else 0):  # warm re-opens in this process: the steady-state cost
        t1 = time.perf_counter()
        mb.MemmapDatasetBridge(path, cache_dir=cache_dir)
        reopen.append(time.perf_counter() - t1)
    return {"open_s": elapsed, **status, "reopen_s": float(np.median(reopen)) if reopen else None,
            "shape": None if arr is None else list(arr.shape)}


def child_gather(path: str, rounds: int, batches: int) -> dict[str, object]:
    from ptycho_torch.dataset import PtychoDataset
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    bridge = MemmapDatasetBridge(path)
    spec = bridge.diffraction_spec
    raw = np.memmap(path, dtype="<f4", mode="r", offset=spec.offset, shape=spec.shape)
    n = spec.shape[0]
    for k0 in range(0, n, 4096):  # warm the page cache so both sides read memory, not disk
        raw[k0:k0 + 4096].sum()
    ds1, ds4 = PtychoDataset(bridge, gridsize=1), PtychoDataset(bridge, gridsize=2)
    rng = np.random.default_rng(0)
    idx = [np.sort(rng.choice(n, BATCH, replace=False)) for _ in range(batches)]

    def rate(fn: object) -> float:
        t0 = time.perf_counter()
        for b in idx:
            fn(b)  # type: ignore[operator]
        return batches * BATCH / (time.perf_counter() - t0)

    ours, raws, grouped = [], [], []
    for _ in range(rounds):  # interleaved so that machine noise hits both sides alike
        ours.append(rate(ds1.get_batch))
        raws.append(rate(lambda b: np.asarray(raw[b])))
        grouped.append(rate(ds4.get_batch))
    return {"ours_pps": float(np.median(ours)), "raw_pps": float(np.median(raws)),
            "grouped4_groups_ps": float(np.median(grouped)), "rounds": rounds, "batches": batches}


def child_epoch(path: str, limit: int, workers: int) -> dict[str, object]:
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    import psutil
    import torch

    from ptycho_torch.dataset import PtychoDataset, make_loader
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge

    me = psutil.Process()
    peaks = {"main_anon": 0.0, "main_file": 0.0, "worker_anon": 0.0, "worker_file": 0.0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                s = proc_status()
                peaks["main_anon"] = max(peaks["main_anon"], s["RssAnon"])
                peaks["main_file"] = max(peaks["main_file"], s["RssFile"])
                for c in me.children():
                    cs = proc_status(c.pid)
                    peaks["worker_anon"] = max(peaks["worker_anon"], cs["RssAnon"])
                    peaks["worker_file"] = max(peaks["worker_file"], cs["RssFile"])
            except (OSError, KeyError, psutil.Error):
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    ds = PtychoDataset(MemmapDatasetBridge(path), gridsize=1)
    total, seen = 0.0, 0
    for batch in make_loader(ds, batch_size=BATCH, num_workers=workers, shuffle=True):
        total += float(batch["diffraction"].double().sum())
        seen += batch["diffraction"].shape[0]
    elapsed = time.perf_counter() - t0
    done.set()
    thread.join()
    return {"epoch_s": elapsed, "patterns": seen, "checksum": total, **peaks,
            "limit_mib": limit / MiB, "torch": torch.__version__}


def child_old_limited(path: str, limit: int) -> dict[str, object]:
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.load(path, mmap_mode="r")["diffraction"].astype(np.float32)
    except MemoryError as exc:
        return {"outcome": f"MemoryError ({exc})"[:120]}
    return {"outcome": "loaded (the cap did not bind)"}


def run_child(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(HERE), "--child", *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ report

def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil
    import torch

    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} logical CPUs (shared with other jobs); "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM; Python {platform.python_version()}, "
            f"numpy {np.__version__}, torch {torch.__version__}")


def append_results(results: Path, section: str) -> None:
    old = results.read_text() if results.exists() else (
        "# Benchmark results\n\nAppended by the scripts in this folder; each section names its command, "
        "machine and date. Timings on shared machines are noisy: compare ratios within a section.\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{results.name}.", dir=results.parent)
    with os.fdopen(fd, "w") as f:
        f.write(old.rstrip("\n") + "\n\n" + section)
    os.chmod(tmp, 0o644)
    os.replace(tmp, results)


Row = tuple[int, str, float, str, dict]  # patterns, format, file MiB, method label, child result

LABELS = {("uncompressed", "ours"): "bridge (in place)", ("compressed", "ours"): "bridge (builds cache)",
          ("compressed", "ours (cached)"): "bridge (cache reused)"}


def measure_opens(files: dict[int, dict[str, Path]], workdir: Path) -> list[Row]:
    rows: list[Row] = []
    for n, by_format in files.items():
        for fmt, path in by_format.items():
            methods = ("ours", "ours (cached)", "old") if fmt == "compressed" else ("ours", "old")
            for method in methods:
                r = run_child("open", method.split()[0], str(path), str(workdir / f"cache{n}"))
                label = LABELS.get((fmt, method), "np.load + astype")
                rows.append((n, fmt, path.stat().st_size / MiB, label, r))
                print(f"  {n} {fmt} {label}: {r}", file=sys.stderr)
    return rows


def render(a: argparse.Namespace, n_small: int, n_big: int, gen_s: float, base: dict, rows: list[Row],
           gather: dict, epoch: dict, control: dict, checksum_ok: bool) -> str:
    per = N_PIX * N_PIX * 4

    def get(n: int, fmt: str, label: str, key: str) -> float:
        return next(float(r[key]) for m, f, _, lab, r in rows if (m, f, lab) == (n, fmt, label))

    def gib(n: int) -> float:
        return n * per / 2**30

    now = dt.datetime.now(dt.UTC)
    out = [f"## bench_memmap: MemmapDatasetBridge vs np.load + astype ({now:%Y-%m-%d %H:%M} UTC)", ""]
    out.append(f"- Command: `python benchmarks/bench_memmap.py --size-gib {a.size_gib:g}`")
    out.append(f"- Machine: {machine()}")
    out.append(f"- Data: {n_small} and {n_big} float32 64x64 patterns ({gib(n_small):.2f} and "
               f"{gib(n_big):.2f} GiB), np.savez layout (unaligned), a simulated 1024-pattern tile repeated; "
               f"compressed twins written with zlib level 1; generated in {gen_s:.0f} s. Page cache warm.")
    out.append(f"- Baseline process (python + numpy + bridge module imported): RSS {base['VmRSS']:.0f} MiB.")
    out += ["", "### Open: time and memory (fresh subprocess per row)", "",
            ("| patterns | file | file MiB | method | first open s | warm reopen ms | RSS after open MiB "
             "| private (RssAnon) MiB | peak RSS MiB |"),
            "|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for n, fmt, size, label, r in rows:
        reopen = "" if r["reopen_s"] is None else f"{float(r['reopen_s']) * 1e3:.1f}"
        out.append(f"| {n} | {fmt} | {size:.0f} | {label} | {float(r['open_s']):.3f} | {reopen} | "
                   f"{float(r['VmRSS']):.0f} | {float(r['RssAnon']):.0f} | {float(r['VmHWM']):.0f} |")
    rss_s, rss_b = (get(m, "uncompressed", "bridge (in place)", "VmRSS") for m in (n_small, n_big))
    t_s, t_b = (get(m, "uncompressed", "bridge (in place)", "open_s") for m in (n_small, n_big))
    w_s, w_b = (get(m, "uncompressed", "bridge (in place)", "reopen_s") for m in (n_small, n_big))
    old_rss = get(n_big, "uncompressed", "np.load + astype", "VmRSS")
    old_t = get(n_big, "uncompressed", "np.load + astype", "open_s")
    build_peak = get(n_big, "compressed", "bridge (builds cache)", "VmHWM")
    reuse_t = get(n_big, "compressed", "bridge (cache reused)", "open_s")
    out += ["", "Ratios (same run):",
            (f"- bridge in place, {n_big} vs {n_small} patterns ({n_big / n_small:.0f}x the data): RSS after "
             f"open x{rss_b / rss_s:.2f}; first open x{t_b / t_s:.2f}, warm reopen x{w_b / w_s:.2f} (what "
             "grows is checking the mapped coordinates, 16 bytes per pattern)."),
            (f"- at {gib(n_big):.2f} GiB, old / bridge in place: RSS x{old_rss / rss_b:.1f}, "
             f"open time x{old_t / t_b:.0f}."),
            (f"- compressed {gib(n_big):.2f} GiB: peak RSS while building the cache {build_peak:.0f} MiB "
             f"({build_peak / (n_big * per / MiB):.2f} of the data size); reopening the cache takes "
             f"{reuse_t:.3f} s.")]
    ours, raw, grouped = gather["ours_pps"], gather["raw_pps"], gather["grouped4_groups_ps"] * 4
    out += ["", f"### Random-batch gather, B = {BATCH}, {a.size_gib:g} GiB file, warm page cache", "",
            (f"Median of {gather['rounds']} interleaved rounds of {gather['batches']} batches (the same "
             "sorted random index batches on both sides):"), "",
            "| reader | patterns/s | MiB/s |", "|---|---:|---:|",
            f"| raw np.memmap fancy index | {raw:.0f} | {raw * per / MiB:.0f} |",
            (f"| PtychoDataset.get_batch, gridsize 1 (tensors + coords) | {ours:.0f} | "
             f"{ours * per / MiB:.0f} |"),
            (f"| PtychoDataset.get_batch, gridsize 2 (4 patterns per group) | {grouped:.0f} | "
             f"{grouped * per / MiB:.0f} |"), "",
            f"Ratio ours / raw (gridsize 1): **{ours / raw:.2f}x** (target >= 0.8x)."]
    rate = int(epoch["patterns"]) / float(epoch["epoch_s"])
    out += ["", "### One DataLoader epoch with private memory capped below the data size", "",
            (f"RLIMIT_DATA = {epoch['limit_mib']:.0f} MiB ({a.limit_fraction:g} of the {gib(n_big):.2f} GiB "
             "data) set in a fresh process before importing torch; workers inherit it. "
             f"`make_loader(batch_size={BATCH}, num_workers=2, shuffle=True)`, gridsize 1."), "",
            (f"- Epoch: {epoch['patterns']} of {n_big} patterns in {float(epoch['epoch_s']):.1f} s "
             f"({rate:.0f} patterns/s); checksum {'matches' if checksum_ok else 'DIFFERS from'} the data."),
            (f"- Peak private memory (RssAnon): main {epoch['main_anon']:.0f} MiB, largest worker "
             f"{epoch['worker_anon']:.0f} MiB. Peak file-backed RSS (RssFile: pages of the mapping, in the "
             f"shared, reclaimable page cache): main {epoch['main_file']:.0f} MiB, largest worker "
             f"{epoch['worker_file']:.0f} MiB."),
            f"- Control, old loader under the same cap: {control['outcome']}.", ""]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-gib", type=float, default=2.0, help="size of the big dataset (default 2)")
    ap.add_argument("--small-fraction", type=float, default=0.25, help="the second size, as a fraction")
    ap.add_argument("--limit-fraction", type=float, default=0.5,
                    help="private-memory cap for the epoch, as a fraction of the big data size")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=200, help="batches per gather round")
    ap.add_argument("--workdir", default=None, help="where the data goes (default: a temp dir, removed)")
    ap.add_argument("--results", default=str(HERE.parent / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        children = {
            "open": lambda: child_open(*rest),
            "gather": lambda: child_gather(rest[0], int(rest[1]), int(rest[2])),
            "epoch": lambda: child_epoch(rest[0], int(rest[1]), int(rest[2])),
            "old-limited": lambda: child_old_limited(rest[0], int(rest[1])),
        }
        print(json.dumps(children[kind]()))
        return 0

    from ptycho_torch.simulate import simulate_dataset

    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="bench_memmap."))
    workdir.mkdir(parents=True, exist_ok=True)
    per = N_PIX * N_PIX * 4
    n_big = int(a.size_gib * 2**30 / per)
    n_small = int(n_big * a.small_fraction)
    try:
        t0 = time.perf_counter()
        tile = simulate_dataset(1024, nphotons=1e4, overlap=0.7, seed=0).diffraction
        files = {n: make_files(workdir, n, f"d{n}", tile) for n in (n_small, n_big)}
        gen_s = time.perf_counter() - t0
        print(f"generated data in {gen_s:.0f} s under {workdir}", file=sys.stderr)
        base = run_child("open", "baseline", "-", "-")
        rows = measure_opens(files, workdir)
        big = str(files[n_big]["uncompressed"])
        gather = run_child("gather", big, str(a.rounds), str(a.batches))
        print(f"  gather: {gather}", file=sys.stderr)
        limit = int(n_big * per * a.limit_fraction)
        epoch = run_child("epoch", big, str(limit), "2")
        control = run_child("old-limited", big, str(limit))
        print(f"  epoch: {epoch}\n  control: {control}", file=sys.stderr)
    finally:
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    tile_sums = tile.astype(np.float64).sum(axis=(1, 2))
    expected = float(tile_sums.sum() * (n_big // len(tile)) + tile_sums[: n_big % len(tile)].sum())
    checksum_ok = abs(float(epoch["checksum"]) - expected) <= 1e-6 * abs(expected)
    section = render(a, n_small, n_big, gen_s, base, rows, gather, epoch, control, checksum_ok)
    print(section)
    if not a.no_write:
        append_results(Path(a.results), section)
        print(f"appended to {a.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
