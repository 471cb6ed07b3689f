"""`ptycho-torch train --init-from BUNDLE`: a run whose network starts from a trained bundle's weights.

Only the encoder-decoder's weights (`net.*`) carry over; the probe and the intensity scale are the new
data's. The two networks must have the same shape: the same N, n_filters and depth, and as many input
channels per pass (a gridsize-1 network, or any with `--encoder pattern`, reads one pattern per pass; a
`--encoder group` network reads its C patterns at once). So a gridsize-1 network can start a gridsize-2
run with `--encoder pattern`: the same network, now judged through the overlap constraint (TRAIN-011).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from ptycho_torch.bundle import load_bundle, sha256_file
from ptycho_torch.errors import BundleError, TrainError
from ptycho_torch.model import Encoder, ModelConfig

NETWORK_PREFIX = "net."


@dataclass(frozen=True)
class StartWeights:
    """The network weights a run starts from, and the bundle they came from: its file name and SHA256, which
    the new bundle's metadata records as `init_from` (the flag's value itself stays in `train_config`, as the
    data's path does)."""

    state: dict[str, Tensor]
    file: str
    sha256: str

    def record(self) -> dict[str, str]:
        return {"file": self.file, "sha256": self.sha256}


def shape(config: ModelConfig) -> tuple[int, int, int, int]:
    """What must agree for one network's weights to start another: N, n_filters, depth, patterns per pass."""
    return (config.N, config.n_filters, config.depth, config.inputs_per_pass)


def describe_shape(config: ModelConfig) -> str:
    return (f"N {config.N}, n_filters {config.n_filters}, depth {config.depth}, {config.inputs_per_pass} "
            f"pattern(s) per pass (gridsize {config.gridsize}, encoder {config.encoder.value})")


def load_start_weights(path: str, target: ModelConfig) -> StartWeights:
    """The network weights of the bundle at `path`, checked to fit a model of `target`'s shape; TrainError
    naming what differs and what to change otherwise."""
    bundle_path = Path(path)
    if not bundle_path.is_file():
        raise TrainError(f"--init-from {path}: no such file; give a bundle a training wrote (its wts.h5.zip)")
    try:
        bundle = load_bundle(bundle_path)
    except BundleError as exc:
        raise TrainError(f"--init-from {path}: not a usable bundle: {exc}") from None
    source = bundle.config.model
    if shape(source) != shape(target):
        hint = (" (a gridsize-1 network starts a gridsize-2 run with --encoder pattern)"
                if source.inputs_per_pass == 1 and target.encoder is Encoder.GROUP and target.channels > 1 else "")
        raise TrainError(f"--init-from {path}: its network ({describe_shape(source)}) does not fit this run's "
                         f"({describe_shape(target)}); train with the same --n-filters and --depth, data of the same N, "
                         f"and as many patterns per pass{hint}")
    state = {k: v for k, v in bundle.model.state_dict().items() if k.startswith(NETWORK_PREFIX)}
    return StartWeights(state=state, file=bundle_path.name, sha256=sha256_file(bundle_path))
