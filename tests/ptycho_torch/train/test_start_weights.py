"""`train --init-from BUNDLE`: a run starts from a trained network's weights, a gridsize-1 network starts a
gridsize-2 run with `--encoder pattern`, and a network of another shape is refused with what to change."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ptycho_torch.bundle import BUNDLE_NAME, load_bundle, sha256_file
from ptycho_torch.errors import TrainError
from ptycho_torch.train.loop import train
from tests.ptycho_torch.train.test_loop import _config

pytestmark = pytest.mark.usefixtures("one_thread")


def _network(bundle: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_bundle(bundle).model.state_dict().items() if k.startswith("net.")}


@pytest.fixture(scope="module")
def gridsize_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained gridsize-1 bundle (TINY: 2 epochs of 4 steps)."""
    config = _config(tmp_path_factory.mktemp("gs1"), precision="32", threads=1)
    train(config, progress=False)
    return Path(config.output_dir) / BUNDLE_NAME


def test_a_gridsize_2_run_with_one_network_per_pattern_starts_from_the_gridsize_1_weights(
        tmp_path: Path, gridsize_1: Path) -> None:
    # a learning rate so small that one Adam step moves no weight by more than 1e-12: the saved network is
    # the one the run started from
    config = _config(tmp_path, gridsize=2, encoder="pattern", init_from=str(gridsize_1), steps=1, lr=1e-12,
                     plateau_steps=0, precision="32", threads=1)
    train(config, progress=False)
    saved = load_bundle(tmp_path / "run" / BUNDLE_NAME)
    assert (saved.config.model.gridsize, saved.config.model.encoder) == (2, "pattern")
    started, source = _network(tmp_path / "run" / BUNDLE_NAME), _network(gridsize_1)
    assert started.keys() == source.keys()
    for name, weight in source.items():
        torch.testing.assert_close(started[name], weight, rtol=0, atol=1e-9)
    assert saved.metadata["init_from"] == {"file": BUNDLE_NAME, "sha256": sha256_file(gridsize_1)}
    fresh = _config(tmp_path, name="fresh", gridsize=2, encoder="pattern", steps=1, lr=1e-12, plateau_steps=0,
                    precision="32", threads=1)
    train(fresh, progress=False)
    assert load_bundle(tmp_path / "fresh" / BUNDLE_NAME).metadata["init_from"] is None
    assert not torch.allclose(_network(tmp_path / "fresh" / BUNDLE_NAME)["net.amplitude_head.weight"],
                              source["net.amplitude_head.weight"])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"gridsize": 2}, (r"its network \(N 16, n_filters 4, depth 2, 1 pattern\(s\) per pass \(gridsize 1, encoder "
                      r"group\)\) does not fit this run's \(N 16, n_filters 4, depth 2, 4 pattern\(s\) per pass "
                      r"\(gridsize 2, encoder group\)\); .* \(a gridsize-1 network starts a gridsize-2 run with "
                      r"--encoder pattern\)")),
    ({"n_filters": 8}, r"n_filters 4, .* does not fit this run's \(N 16, n_filters 8,.*same --n-filters and --depth"),
])
def test_a_network_of_another_shape_is_refused_with_what_to_change(
        tmp_path: Path, gridsize_1: Path, overrides: dict[str, int], message: str) -> None:
    config = _config(tmp_path, init_from=str(gridsize_1), steps=1, threads=1, **overrides)
    with pytest.raises(TrainError, match=message):
        train(config, progress=False)
    assert not (tmp_path / "run" / BUNDLE_NAME).exists()


def test_a_missing_or_broken_bundle_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"--init-from .*nothing.zip: no such file; give a bundle a training wrote"):
        train(_config(tmp_path, init_from=str(tmp_path / "nothing.zip"), steps=1, threads=1), progress=False)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(TrainError, match=r"--init-from .*broken.zip: not a usable bundle"):
        train(_config(tmp_path, init_from=str(broken), steps=1, threads=1), progress=False)
