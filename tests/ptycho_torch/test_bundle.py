"""Model bundles: round trip through real files, no pickle, checksums, tampered and truncated bundles."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as safetensors_load

from ptycho_torch import physics
from ptycho_torch.bundle import (
    BUNDLE_NAME,
    MANIFEST_MEMBER,
    METADATA_MEMBER,
    WEIGHTS_MEMBER,
    BundleError,
    DataConfig,
    load_bundle,
    read_bundle_config,
    save_bundle,
    sidecar_path,
)
from ptycho_torch.model import ModelConfig, PtychoPINN

N = 16


def _model(seed: int = 0, gridsize: int = 1) -> PtychoPINN:
    torch.manual_seed(seed)
    yy, xx = np.mgrid[:N, :N] - N // 2
    probe = np.exp(-(xx**2 + yy**2) / 18.0) * np.exp(1j * 0.2 * xx)  # complex, not symmetric
    probe_t = torch.tensor(probe, dtype=torch.complex64)
    config = ModelConfig(N=N, gridsize=gridsize, n_filters=4, depth=2)
    model = PtychoPINN(config, probe_t, physics.intensity_scale(probe_t, 1e3))
    with torch.no_grad():  # move away from the init so a weight mix-up shows in the outputs
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _save(tmp_path: Path, model: PtychoPINN | None = None, name: str = BUNDLE_NAME) -> Path:
    model = model or _model()
    data = DataConfig(N=N, gridsize=model.config.gridsize, K=5, group_seed=3)
    meta = {"seed": 7, "final_val_loss": float("nan"), "epochs": 2, "intensity_scale": 1.5}
    return save_bundle(tmp_path / name, model, data, meta)


def _inputs(model: PtychoPINN) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    c = model.config.channels
    return torch.rand(3, c, N, N, generator=gen) * 20, torch.randn(3, c, 2, generator=gen) * (c > 1)


def _rewrite(path: Path, replace: dict[str, bytes]) -> None:
    """Rewrite the zip with some members' bytes replaced (a valid zip whose content was tampered with)."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("gridsize", [1, 2])
def test_round_trip_rebuilds_the_same_network(tmp_path: Path, gridsize: int) -> None:
    model = _model(gridsize=gridsize)
    model.net.to(memory_format=torch.channels_last)  # how the trainer keeps it on CPU
    path = _save(tmp_path, model)
    bundle = load_bundle(path)
    diffraction, coords = _inputs(model)
    with torch.no_grad():
        expected = model(diffraction, coords)
        got = bundle.model(diffraction, coords)
    for name, value in model.state_dict().items():  # bit-exact weights and buffers ...
        assert torch.equal(bundle.model.state_dict()[name], value), name
    torch.testing.assert_close(got.object_patches, expected.object_patches)  # ... memory layout aside
    torch.testing.assert_close(got.pred_amplitude, expected.pred_amplitude)
    assert bundle.model.probe.dtype == torch.complex64 and torch.equal(bundle.model.probe, model.probe)
    assert float(bundle.model.intensity_scale) == float(model.intensity_scale)
    assert bundle.config.model == model.config
    assert bundle.config.data == DataConfig(N=N, gridsize=gridsize, K=5, group_seed=3)
    assert bundle.metadata["seed"] == 7 and np.isnan(bundle.metadata["final_val_loss"])
    assert not bundle.model.training
    assert read_bundle_config(path)[0] == bundle.config


def test_contents_hold_no_pickle_and_a_manifest_and_sidecar(tmp_path: Path) -> None:
    path = _save(tmp_path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    assert sorted(members) == sorted(["model.safetensors", "config.json", "metadata.json", MANIFEST_MEMBER])
    assert not any(data.startswith(b"\x80") for data in members.values())  # pickle protocol 2+ magic
    tensors = safetensors_load(members[WEIGHTS_MEMBER])  # plain safetensors, readable by any client
    assert tensors["probe"].dtype == torch.float32 and tensors["probe"].shape == (1, N, N, 2)
    header_len = int.from_bytes(members[WEIGHTS_MEMBER][:8], "little")
    header = json.loads(members[WEIGHTS_MEMBER][8 : 8 + header_len])
    assert json.loads(header["__metadata__"]["complex_as_real"]) == ["probe"]
    manifest = dict(reversed(line.split("  ")) for line in members[MANIFEST_MEMBER].decode().splitlines())
    assert set(manifest) == {"model.safetensors", "config.json", "metadata.json"}
    for name, digest in manifest.items():
        assert hashlib.sha256(members[name]).hexdigest() == digest
    assert json.loads(members["config.json"])["format"] == "ptycho_torch-bundle"
    digest, name = sidecar_path(path).read_text().split()
    assert name == BUNDLE_NAME and digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_model_gives_the_same_bytes(tmp_path: Path) -> None:
    first = _save(tmp_path, _model(), "a.zip").read_bytes()
    second = _save(tmp_path, _model(), "b.zip").read_bytes()
    assert first == second
    assert _save(tmp_path, _model(seed=1), "c.zip").read_bytes() != first


def test_tampered_member_is_rejected_by_the_sidecar_and_by_the_manifest(tmp_path: Path) -> None:
    path = _save(tmp_path)
    meta = json.loads(zipfile.ZipFile(path).read(METADATA_MEMBER))
    meta["epochs"] = 999
    _rewrite(path, {METADATA_MEMBER: json.dumps(meta).encode()})
    with pytest.raises(BundleError, match="does not match its sidecar"):
        load_bundle(path)
    sidecar_path(path).unlink()  # a bundle copied without its sidecar is still checked
    with pytest.raises(BundleError, match="metadata.json does not match its SHA256"):
        load_bundle(path)


def test_tampered_weights_are_rejected(tmp_path: Path) -> None:
    path = _save(tmp_path)
    blob = bytearray(zipfile.ZipFile(path).read(WEIGHTS_MEMBER))
    blob[-1] ^= 0xFF  # one weight byte
    _rewrite(path, {WEIGHTS_MEMBER: bytes(blob)})
    sidecar_path(path).unlink()
    with pytest.raises(BundleError, match="model.safetensors does not match"):
        load_bundle(path)


def test_extra_member_is_rejected(tmp_path: Path) -> None:
    path = _save(tmp_path)
    _rewrite(path, {"extra.bin": b"surprise"})
    sidecar_path(path).unlink()
    with pytest.raises(BundleError, match="tampered"):
        load_bundle(path)


@pytest.mark.parametrize("keep_sidecar", [True, False])
def test_truncated_bundle_gives_a_clear_error(tmp_path: Path, keep_sidecar: bool) -> None:
    path = _save(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    if not keep_sidecar:
        sidecar_path(path).unlink()
    with pytest.raises(BundleError, match="sidecar" if keep_sidecar else "corrupt or truncated"):
        load_bundle(path)


def test_flipped_byte_without_sidecar_is_caught(tmp_path: Path) -> None:
    path = _save(tmp_path)
    sidecar_path(path).unlink()
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01  # inside the deflated weights
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        load_bundle(path)


def test_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "none.zip")
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("weights.h5", b"keras")
    with pytest.raises(BundleError, match="not a ptycho_torch bundle"):
        load_bundle(foreign)
    with pytest.raises(BundleError, match="does not exist"):
        save_bundle(tmp_path / "no" / "dir" / BUNDLE_NAME, _model(), DataConfig(N=N), {})


def test_config_that_does_not_fit_the_weights(tmp_path: Path) -> None:
    """A consistently re-hashed bundle with a changed config still fails, with a clear message."""
    path = _save(tmp_path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["model"]["n_filters"] = 8
    members["config.json"] = json.dumps(config).encode()
    members[MANIFEST_MEMBER] = "".join(
        f"{hashlib.sha256(members[n]).hexdigest()}  {n}\n" for n in ("model.safetensors", "config.json",
                                                                    "metadata.json")).encode()
    _rewrite(path, members)
    sidecar_path(path).unlink()
    with pytest.raises(BundleError, match="do not fit the stored configuration"):
        load_bundle(path)


def test_the_reference_options_and_the_channel_order_survive_a_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    probe = _model().probe
    config = ModelConfig(N=N, gridsize=2, n_filters=4, depth=2, support=8, support_fill="zero",
                         probe_mask_radius=5.0, merge_weights="central")
    model = PtychoPINN(config, probe, 1.5).eval()
    data = DataConfig(N=N, gridsize=2, K=5, group_seed=3, channel_order="quadrant")
    bundle = load_bundle(save_bundle(tmp_path / BUNDLE_NAME, model, data, {"seed": 0}))
    assert bundle.config.model == config and bundle.config.data == data
    diffraction, coords = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(bundle.model(diffraction, coords).pred_amplitude,
                                   model(diffraction, coords).pred_amplitude)


def test_a_data_config_with_an_unknown_channel_order_is_refused() -> None:
    with pytest.raises(BundleError, match=r"channel_order must be one of \['seed', 'quadrant'\], got 'spiral'"):
        DataConfig.from_dict({"N": N, "channel_order": "spiral"})
    assert DataConfig.from_dict({"N": N}).channel_order == "seed"  # bundles written before the option
