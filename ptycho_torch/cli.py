"""`ptycho-torch` command line: parse argv, dispatch to one command function, map errors to exit codes.

Each subcommand is one `_add_<name>(subparsers)` function that declares its arguments and sets `run` to an
adapter calling the command's keyword-argument function (which returns an exit code). Adding a subcommand
means writing one such function and listing it in SUBCOMMANDS.

Importing this module does not import torch (a command imports what it needs when it runs), so
`ptycho-torch --help` and argument errors answer at once; the train subcommand's defaults are read from
TrainConfig, which is torch-free.

Exit codes: 0 success; 1 a user error (bad input, impossible parameters, unwritable path) with a
one-line message and no traceback; 2 bad usage (argparse); 3 an unexpected error (a bug), with the
traceback; 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ptycho_torch import __version__
from ptycho_torch.errors import PtychoTorchError
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.train.config import TrainConfig

Subparsers = Any  # argparse's _SubParsersAction is private


def _add_simulate(sub: Subparsers) -> None:
    p = sub.add_parser("simulate", help="generate a synthetic fly64-like dataset (contract-valid NPZ)",
                       description="Generate a synthetic dataset and print the bridge's summary of it.")
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--n-images", type=int, default=2000, help="number of diffraction patterns (default 2000)")
    p.add_argument("--nphotons", type=float, default=1e4, help="mean total counts per pattern (default 1e4)")
    p.add_argument("--overlap", type=float, default=0.7,
                   help="scan overlap fraction; spacing = (1 - overlap) * N (dense 0.7, sparse 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--N", type=int, default=None, help="pattern width in pixels (default 64, or the probe's)")
    p.add_argument("--scan", choices=["grid", "random"], default="grid", help="raster grid or jittered grid")
    p.add_argument("--object-size", type=int, default=None, help="object side in pixels (default: fit the scan)")
    p.add_argument("--probe-from", default=None, metavar="NPZ", help="use this dataset's probeGuess")
    p.add_argument("--legacy-key", action="store_true", help="store diffraction under the legacy key diff3d")
    p.add_argument("--compress", action="store_true", help="compress the NPZ (then it cannot map in place)")
    p.add_argument("--split", type=float, default=None, metavar="TEST_FRACTION",
                   help="write <out>_train.npz and <out>_test.npz with disjoint scan regions")
    p.add_argument("--no-progress", action="store_true", help="never show the progress bar")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.simulate import simulate_command

        return simulate_command(out=a.out, n_images=a.n_images, nphotons=a.nphotons, overlap=a.overlap,
                                seed=a.seed, N=a.N, scan=a.scan, object_size=a.object_size,
                                probe_from=a.probe_from, legacy_key=a.legacy_key, compress=a.compress,
                                split=a.split, progress_bar=False if a.no_progress else None)

    p.set_defaults(run=run)


def _add_inspect(sub: Subparsers) -> None:
    p = sub.add_parser("inspect", help="validate an NPZ dataset and print its summary",
                       description="Open FILE through the memory-mapped bridge and print its summary.")
    p.add_argument("file", metavar="FILE.npz")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--validate", choices=["fast", "full"], default="fast",
                   help="fast: sample 16 patterns; full: check every value and the CRC")
    p.add_argument("--cache-dir", default=None, help="where a float32 conversion cache may be written")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.memmap_bridge import inspect_command

        return inspect_command(path=a.file, as_json=a.json, validate=a.validate, cache_dir=a.cache_dir)

    p.set_defaults(run=run)


def _add_train(sub: Subparsers) -> None:
    d = TrainConfig.defaults()  # one source of defaults
    p = sub.add_parser("train", help="train PtychoPINN on an NPZ dataset; writes <output-dir>/wts.h5.zip",
                       description="Train PtychoPINN. Under torchrun (torchrun --nproc_per_node=K -m "
                       "ptycho_torch.train ...) the same flags run data-parallel, one process per device.")
    p.add_argument("--data", required=True, help="training NPZ (data contract)")
    p.add_argument("--output-dir", required=True, help="checkpoint, history, loss curve and wts.h5.zip go here")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=d["epochs"],
                        help="passes over the data (default: none; at most --max-steps steps)")
    length.add_argument("--steps", type=int, default=d["steps"],
                        help="optimizer steps of the final attempt, instead of --epochs (a run on the plateau "
                        "restarts; see --plateau-steps)")
    p.add_argument("--max-steps", type=int, default=d["max_steps"],
                   help=f"the length without --epochs or --steps: at most this many steps, usually ended "
                   f"earlier by --patience (default {d['max_steps']})")
    p.add_argument("--patience", type=int, default=d["patience"],
                   help="stop once the validation loss has not reached a new minimum for this many steps "
                   f"(checked at the end of each epoch); 0 = never (default {d['patience']})")
    p.add_argument("--keep-last", dest="keep_best", action="store_false", default=d["keep_best"],
                   help="save the last weights instead of those of the lowest validation loss")
    p.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help=f"groups per batch and process (default {d['batch_size']})")
    p.add_argument("--lr", type=float, default=d["lr"], help=f"Adam learning rate (default {d['lr']:g})")
    p.add_argument("--lr-schedule", choices=["plateau", "constant"], default=d["lr_schedule"],
                   help="plateau: halve the rate when progress stalls, once off the flat-object plateau "
                   f"(default {d['lr_schedule']})")
    p.add_argument("--lr-patience", type=int, default=d["lr_patience"],
                   help=f"steps without progress before the rate is halved (default {d['lr_patience']})")
    p.add_argument("--lr-warmup", type=int, default=d["lr_warmup"], metavar="STEPS",
                   help="raise the rate linearly from lr/STEPS to lr over the first STEPS steps of each attempt: "
                   f"Adam's first steps at the full rate can throw a run far off (default {d['lr_warmup']}; 0 = none)")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help=f"seeds init, split, grouping and data order (default {d['seed']})")
    p.add_argument("--val-fraction", type=float, default=d["val_fraction"],
                   help="scan positions held out for validation, one region of the scan, grouped apart from "
                   f"the training positions (default {d['val_fraction']})")
    p.add_argument("--gridsize", type=int, default=d["gridsize"],
                   help=f"groups of gridsize**2 neighbours (default {d['gridsize']})")
    p.add_argument("--K", type=int, default=d["K"],
                   help=f"neighbours a group is drawn from (gridsize > 1; default {d['K']})")
    p.add_argument("--groups-per-position", type=int, default=d["groups_per_position"], metavar="S",
                   help="training groups seeded at each scan position, each drawn from its K neighbours "
                   f"(gridsize > 1; default {d['groups_per_position']})")
    p.add_argument("--channel-order", choices=["seed", "quadrant"], default=d["channel_order"],
                   help="order of a group's patterns as input channels: the seed first, or by place (rows "
                   f"top to bottom, each left to right) (default {d['channel_order']})")
    p.add_argument("--init-from", default=None, metavar="BUNDLE",
                   help="start the network from this trained bundle's weights (wts.h5.zip; the same N, "
                   "--n-filters and --depth; a gridsize-1 network starts gridsize 2 with --encoder pattern)")
    p.add_argument("--encoder", choices=["group", "pattern"], default=d["encoder"],
                   help="gridsize > 1: one network reads a group's patterns as its channels, or one network, "
                   f"its weights shared, reads each pattern alone (default {d['encoder']})")
    p.add_argument("--support", type=int, default=d["support"], metavar="PX",
                   help="the network fills only the central PX x PX of each object patch; 0: the whole patch "
                   f"(default {d['support']})")
    p.add_argument("--support-fill", choices=["vacuum", "zero"], default=d["support_fill"],
                   help=f"the patch outside the support: amplitude 1 or 0 (default {d['support_fill']})")
    p.add_argument("--probe-mask-radius", type=float, default=d["probe_mask_radius"], metavar="PX",
                   help="multiply the physics' probe by a disk of this radius; 0: no mask "
                   f"(default {d['probe_mask_radius']:g})")
    p.add_argument("--merge", choices=["probe", "uniform", "central"], default=d["merge"],
                   help="gridsize > 1: how a group's patches count where they overlap: probe intensity, all "
                   f"alike, or only their central N/2 x N/2 (default {d['merge']})")
    p.add_argument("--n-filters", type=int, default=d["n_filters"],
                   help=f"channels of the first stage (default {d['n_filters']})")
    p.add_argument("--depth", type=int, default=d["depth"],
                   help=f"encoder/decoder stages; N must divide by 2**depth (default {d['depth']})")
    p.add_argument("--loss", choices=["poisson", "mae"], default=d["loss"])
    p.add_argument("--grad-clip", type=float, default=d["grad_clip"],
                   help=f"max gradient norm, 0 = off (default {d['grad_clip']:g})")
    p.add_argument("--plateau-steps", type=int, default=d["plateau_steps"],
                   help="restart from a new seed when the run has not closed --escape-gap of the gap between a "
                   f"flat object's loss and the best possible after this many steps; 0 = never "
                   f"(default {d['plateau_steps']})")
    p.add_argument("--escape-gap", type=float, default=d["escape_gap"],
                   help=f"fraction of that gap that counts as off the plateau (default {d['escape_gap']:g})")
    p.add_argument("--max-restarts", type=int, default=d["max_restarts"],
                   help=f"restarts from the plateau at most (default {d['max_restarts']})")
    p.add_argument("--threads", type=int, default=d["threads"],
                   help="torch CPU threads; 0 = the cores this process may use (default 0). On a busy machine "
                   "1 is often fastest")
    p.add_argument("--device", default=d["device"], help="auto (CUDA if available), cpu, cuda, cuda:K")
    p.add_argument("--precision", choices=["auto", "32", "bf16"], default=d["precision"],
                   help="auto: bf16 autocast on CUDA and on CPUs with bf16 units (AMX), else 32")
    p.add_argument("--compile", action="store_true", default=d["compile"],
                   help="torch.compile the model (slow first steps)")
    p.add_argument("--num-workers", type=int, default=d["num_workers"],
                   help=f"DataLoader worker processes (default {d['num_workers']})")
    p.add_argument("--resume", action="store_true", help="continue from <output-dir>/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    p.add_argument("--debug-nan-at-step", type=int, default=None, help=argparse.SUPPRESS)  # test hooks
    p.add_argument("--debug-step-delay", type=float, default=0.0, help=argparse.SUPPRESS)

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.train.loop import train_command

        return train_command(
            data=a.data, output_dir=a.output_dir, epochs=a.epochs, steps=a.steps, max_steps=a.max_steps,
            patience=a.patience, keep_best=a.keep_best, batch_size=a.batch_size,
            lr=a.lr, lr_schedule=a.lr_schedule, lr_patience=a.lr_patience, lr_warmup=a.lr_warmup, seed=a.seed,
            val_fraction=a.val_fraction, gridsize=a.gridsize, K=a.K, groups_per_position=a.groups_per_position,
            channel_order=a.channel_order, support=a.support, support_fill=a.support_fill,
            probe_mask_radius=a.probe_mask_radius, encoder=a.encoder, init_from=a.init_from, merge=a.merge,
            n_filters=a.n_filters, depth=a.depth,
            loss=a.loss, grad_clip=a.grad_clip, plateau_steps=a.plateau_steps, escape_gap=a.escape_gap,
            max_restarts=a.max_restarts, threads=a.threads, device=a.device, precision=a.precision,
            compile=a.compile, num_workers=a.num_workers, resume=a.resume, progress=not a.no_progress,
            debug_nan_at_step=a.debug_nan_at_step, debug_step_delay_s=a.debug_step_delay)

    p.set_defaults(run=run)


def _add_infer(sub: Subparsers) -> None:
    p = sub.add_parser("infer", help="reconstruct a dataset's object with a trained bundle (recon.npz)",
                       description="Predict object patches batch by batch and stitch them at the scan "
                       "positions into <output-dir>/recon.npz (object, coverage) plus amplitude/phase PNGs.")
    p.add_argument("--bundle", required=True, help="wts.h5.zip written by `ptycho-torch train`")
    p.add_argument("--data", required=True, help="NPZ dataset to reconstruct")
    p.add_argument("--output-dir", required=True, help="where recon.npz and the PNGs go")
    p.add_argument("--batch-size", type=int, default=64, help="groups per batch (default 64)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:K")
    p.add_argument("--precision", choices=["auto", "32", "bf16"], default="auto",
                   help="auto: bf16 autocast on CUDA and on CPUs with bf16 units (AMX), else 32")
    p.add_argument("--coverage-threshold", type=float, default=COVERAGE_THRESHOLD,
                   help="a pixel is covered where the summed probe intensity reaching it is >= this "
                   f"fraction of one probe's peak (default {COVERAGE_THRESHOLD})")
    p.add_argument("--stitch-window", type=int, default=None, metavar="M",
                   help="stitch only the central M x M pixels of each patch, all alike; 0: whole patches "
                   "weighted by the probe's intensity (default: weighted by the probe's intensity within the "
                   "model's support window, if it has one)")
    p.add_argument("--no-flat-field", action="store_true",
                   help="stitch the network's patches as they are; by default the beam's imprint that they "
                   "share (their average over the scan, which the object's is not) is divided out first")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.infer import infer_command

        return infer_command(bundle=a.bundle, data=a.data, output_dir=a.output_dir, batch_size=a.batch_size,
                             device=a.device, precision=a.precision, coverage_threshold=a.coverage_threshold,
                             stitch_window=a.stitch_window, flat_field=not a.no_flat_field)

    p.set_defaults(run=run)


def _add_evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="score a reconstruction against the truth (metrics.json + figure)",
                       description="Compare a reconstruction with the truth's objectGuess after "
                       "registration and phase/scale alignment; print the scores beside a constant object's.")
    p.add_argument("--recon", required=True, help="recon.npz from `ptycho-torch infer` (or an .npy)")
    p.add_argument("--truth", required=True, help="dataset .npz holding objectGuess (or an .npy)")
    p.add_argument("--output-dir", default=None, help="where metrics.json and comparison.png go "
                   "(default: the folder of --recon)")
    p.add_argument("--no-fit-scale", action="store_true", help="do not fit a global amplitude scale")
    p.add_argument("--no-ramp", action="store_true", help="do not remove a linear phase ramp")
    p.add_argument("--no-register", action="store_true", help="do not register (sub-pixel shift)")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.evaluate import evaluate_command

        return evaluate_command(recon=a.recon, truth=a.truth, output_dir=a.output_dir,
                                fit_scale=not a.no_fit_scale, remove_ramp=not a.no_ramp,
                                register=not a.no_register)

    p.set_defaults(run=run)


RECONSTRUCT_METHODS = ("ml", "epie", "ptychi-lsqml")  # baselines.Method's values (a test holds them equal)


def _add_reconstruct(sub: Subparsers) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct a dataset iteratively (recon.npz, as infer writes it)",
                       description="Reconstruct a dataset's object with an iterative method from its own "
                       "diffraction, probeGuess and positions into <output-dir>/recon.npz (scored by "
                       "`evaluate` like `infer`'s) and reconstruct.json (settings, timing, fit per iteration).")
    p.add_argument("--method", required=True, choices=RECONSTRUCT_METHODS,
                   help="ml: Poisson maximum likelihood; epie: rPIE; ptychi-lsqml: pty-chi's LSQML (needs "
                   "pip install 'ptycho-harness[ptychi]')")
    p.add_argument("--data", required=True, help="NPZ dataset to reconstruct (data contract)")
    p.add_argument("--output-dir", required=True, help="where recon.npz and reconstruct.json go")
    p.add_argument("--iterations", type=int, default=50, help="passes over all patterns (default 50)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="patterns per update (epie, ptychi-lsqml) or per gradient chunk (ml) (default 32)")
    p.add_argument("--refine-probe", action="store_true", help="also refine the probe (from iteration 3)")
    p.add_argument("--seed", type=int, default=0, help="the order of the updates (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:K")
    p.add_argument("--coverage-threshold", type=float, default=COVERAGE_THRESHOLD,
                   help="a pixel is covered where the summed probe intensity reaching it is >= this "
                   f"fraction of one probe's peak (default {COVERAGE_THRESHOLD})")
    p.add_argument("--init-from", default=None, metavar="RECON_NPZ",
                   help="start from this reconstruction (a recon.npz that infer wrote for this dataset) "
                   "instead of a flat object; its amplitude scale is fitted to the measured counts")
    p.add_argument("--holdout-fraction", type=float, default=None, metavar="F",
                   help="keep this share of the patterns out of the updates and return the iterate that "
                   "fits them best (early stop); default 0.1 with --init-from, else 0 (off)")
    p.add_argument("--patience", type=int, default=10,
                   help="with a holdout: stop after this many iterations without a better held-out fit "
                   "(default 10)")
    p.add_argument("--holdout", choices=["patterns", "pixels"], default="patterns",
                   help="what --holdout-fraction holds out: whole patterns (default) or that share of every "
                   "pattern's detector pixels (ml only; stops less early at high dose)")
    p.add_argument("--ml-warmup", type=int, default=None, metavar="N",
                   help="ml only: the first N iterations damp the Poisson gradient where the start predicts "
                   "far fewer photons than were counted, the damping fading out over them (default 30; 0 = "
                   "the exact gradient from the first iteration)")
    p.add_argument("--no-progress", action="store_true", help="print no per-iteration lines")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.reconstruct import reconstruct_command

        return reconstruct_command(method=a.method, data=a.data, output_dir=a.output_dir,
                                   iterations=a.iterations, batch_size=a.batch_size,
                                   refine_probe=a.refine_probe, seed=a.seed, device=a.device,
                                   coverage_threshold=a.coverage_threshold, init_from=a.init_from,
                                   holdout_fraction=a.holdout_fraction, patience=a.patience,
                                   holdout=a.holdout, ml_warmup=a.ml_warmup, progress=not a.no_progress)

    p.set_defaults(run=run)


def _add_study(sub: Subparsers) -> None:
    p = sub.add_parser("study", help="dose/overlap study: PtychoPINN against the iterative baseline",
                       description="Simulate datasets for every dose and overlap, train PtychoPINN per gridsize "
                       "on a train region, reconstruct the unseen test region with it and with the iterative "
                       "baseline, score both, and write metrics.csv, comparison.md and figures. Finished "
                       "stages are reused (manifest.json); rerun the same command to resume.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", default=None, metavar="YAML", help="study config file")
    source.add_argument("--preset", choices=["smoke", "full"], default=None,
                        help="smoke: tiny, a few minutes on a CPU (CI); full: the anchor grid, for a GPU")
    p.add_argument("--output-dir", required=True, help="study folder (created; reused stages are kept here)")
    p.add_argument("--probe-from", default=None, metavar="NPZ",
                   help="use this file's probeGuess as the probe (its size sets N)")

    def run(a: argparse.Namespace) -> int:
        from ptycho_torch.study.run import study_command

        return study_command(output_dir=a.output_dir, config=a.config, preset=a.preset, probe_from=a.probe_from)

    p.set_defaults(run=run)


SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_simulate, _add_inspect, _add_train, _add_infer, _add_reconstruct, _add_evaluate, _add_study,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptycho-torch", description="Ptychography in PyTorch.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: keep main() returning an int
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except PtychoTorchError as exc:
        print(f"ptycho-torch {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"ptycho-torch {args.command}: error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ptycho-torch {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - the crash handler: a bug gets exit 3 and its traceback
        traceback.print_exc()
        print(f"ptycho-torch {args.command}: unexpected error (a bug; the traceback above says where)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
