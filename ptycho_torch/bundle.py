"""Model bundles: `wts.h5.zip` (the name existing study tooling expects) plus a `wts.h5.zip.sha256` sidecar.

The zip holds, and nothing is pickled anywhere:
    model.safetensors   the state dict of PtychoPINN (weights and buffers: probe, intensity_scale, input_rms)
    config.json         {"format", "format_version", "model": ModelConfig.to_dict(), "data": DataConfig}
    metadata.json       training metadata (package versions, seed, dataset SHA256, epochs, losses, ...)
    MANIFEST.sha256     "<sha256>  <member>" for every other member, as `sha256sum` writes it

Complex tensors (the probe) are stored as float32 views of shape (..., 2) = (real, imag), because not every
safetensors version has a complex dtype; their names are listed in the safetensors header metadata under
"complex_as_real" and turned back into complex64 on load.

The zip is written deterministically (fixed member order and timestamps), so the same model gives the same
bytes, and atomically (temp file + os.replace).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import BundleError
from ptycho_torch.grouping import ChannelOrder
from ptycho_torch.model import ModelConfig, ModelConfigError, PtychoPINN

log = logging.getLogger(__name__)

BUNDLE_NAME = "wts.h5.zip"
FORMAT = "ptycho_torch-bundle"
FORMAT_VERSION = 1
WEIGHTS_MEMBER = "model.safetensors"
CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
MANIFEST_MEMBER = "MANIFEST.sha256"
CONTENT_MEMBERS = (WEIGHTS_MEMBER, CONFIG_MEMBER, METADATA_MEMBER)
COMPLEX_KEY = "complex_as_real"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataConfig:
    """How the network's inputs were built from a dataset; inference rebuilds them the same way."""

    N: int  # pattern side in pixels
    gridsize: int = 1  # C = gridsize**2 patterns per group
    K: int = 7  # neighbours a group's members are drawn from
    group_seed: int = 0  # seed of the neighbour draw (gridsize > 1)
    channel_order: str = "seed"  # grouping.ChannelOrder of each group's patterns (the input channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BundleError(f"unknown data config key(s) {unknown}; known keys: {sorted(known)}")
        for name, value in data.items():
            if name == "channel_order":
                choices = [order.value for order in ChannelOrder]
                if value not in choices:
                    raise BundleError(f"data config channel_order must be one of {choices}, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise BundleError(f"data config {name} must be an integer, got {value!r}")
        return cls(**dict(data))


@dataclass(frozen=True)
class BundleConfig:
    model: ModelConfig
    data: DataConfig


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the rebuilt network (weights loaded, eval mode, on the requested device)."""

    model: PtychoPINN
    config: BundleConfig
    metadata: dict[str, Any]
    path: Path


# ----------------------------------------------------------------------------------------------- hashing


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(bundle_path: str | os.PathLike[str]) -> Path:
    path = Path(bundle_path)
    return path.with_name(path.name + ".sha256")


def _manifest_text(members: Mapping[str, bytes]) -> bytes:
    lines = [f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items()]
    return "".join(lines).encode()


def _parse_manifest(text: bytes, where: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest) or not name:
            raise BundleError(f"{where}: {MANIFEST_MEMBER} line {number} is not '<sha256>  <name>': {line!r}")
        out[name] = digest
    return out


# ----------------------------------------------------------------------------------------------- tensors


def _to_safetensors(model: PtychoPINN) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    complex_names: list[str] = []
    for name, value in model.state_dict().items():
        tensor = value.detach().to("cpu")
        if torch.is_complex(tensor):
            tensor = torch.view_as_real(tensor.to(torch.complex64).resolve_conj())
            complex_names.append(name)
        tensors[name] = tensor.contiguous()  # channels_last or views would be rejected
    return safetensors_save(tensors, metadata={COMPLEX_KEY: json.dumps(sorted(complex_names))})


def _safetensors_metadata(blob: bytes, where: Path) -> dict[str, str]:
    """The "__metadata__" of a safetensors blob: 8-byte little-endian header length, then JSON."""
    if len(blob) < 8:
        raise BundleError(f"{where}: {WEIGHTS_MEMBER} is too short to be a safetensors file")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > len(blob) - 8:
        raise BundleError(f"{where}: {WEIGHTS_MEMBER} header runs past its end (truncated?)")
    try:
        header = json.loads(blob[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: {WEIGHTS_MEMBER} header is not valid JSON: {exc}") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _from_safetensors(blob: bytes, where: Path) -> dict[str, torch.Tensor]:
    meta = _safetensors_metadata(blob, where)
    try:
        tensors = safetensors_load(blob)
        complex_names = json.loads(meta.get(COMPLEX_KEY, "[]"))
    except (SafetensorError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: {WEIGHTS_MEMBER} cannot be read: {exc}") from None
    if not isinstance(complex_names, list) or not all(isinstance(n, str) for n in complex_names):
        raise BundleError(f"{where}: {WEIGHTS_MEMBER} metadata {COMPLEX_KEY!r} must be a list of names")
    for name in complex_names:
        value = tensors.get(name)
        if value is None or value.shape[-1:] != (2,) or value.dtype != torch.float32:
            raise BundleError(f"{where}: tensor {name!r} is listed as complex but is not float32 (..., 2)")
        tensors[name] = torch.view_as_complex(value.contiguous())
    return tensors


# ----------------------------------------------------------------------------------------------- writing


def _zip_bytes(members: Mapping[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def save_bundle(
    path: str | os.PathLike[str],
    model: PtychoPINN,
    data_config: DataConfig,
    metadata: Mapping[str, Any],
) -> Path:
    """Write the bundle zip and its `.sha256` sidecar atomically; returns the bundle path.

    model must be the plain PtychoPINN (unwrap DDP / torch.compile first). metadata must be JSON-safe;
    NaN / Infinity are written as JSON's non-standard literals, which Python's json reads back.
    """
    if not isinstance(model, PtychoPINN):
        raise BundleError(f"save_bundle needs a PtychoPINN (unwrapped), got {type(model).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise BundleError(f"cannot write bundle {path}: directory {path.parent} does not exist")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "data": data_config.to_dict(),
    }
    try:
        meta_text = json.dumps(dict(metadata), indent=2, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"bundle metadata must be JSON-serialisable: {exc}") from None
    content = {
        WEIGHTS_MEMBER: _to_safetensors(model),
        CONFIG_MEMBER: json.dumps(config, indent=2, sort_keys=True).encode(),
        METADATA_MEMBER: meta_text.encode(),
    }
    blob = _zip_bytes({**content, MANIFEST_MEMBER: _manifest_text(content)})
    atomic_write_bytes(path, blob)
    atomic_write_bytes(sidecar_path(path), f"{hashlib.sha256(blob).hexdigest()}  {path.name}\n".encode())
    return path


# ----------------------------------------------------------------------------------------------- loading


def _check_sidecar(path: Path) -> None:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        log.warning("%s: no sidecar %s; relying on the bundle's internal manifest only", path, sidecar.name)
        return
    text = sidecar.read_text(errors="replace").split()
    if not text or len(text[0]) != 64:
        raise BundleError(f"{sidecar}: not a '<sha256>  <name>' line; regenerate it with sha256sum")
    actual = sha256_file(path)
    if actual != text[0].lower():
        raise BundleError(
            f"{path}: SHA256 {actual[:16]}... does not match its sidecar {sidecar.name} "
            f"({text[0][:16]}...): the bundle was modified or truncated after it was written; "
            "copy it again from its source or retrain"
        )


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if MANIFEST_MEMBER not in names:
                raise BundleError(f"{path}: no {MANIFEST_MEMBER} inside; this is not a ptycho_torch bundle")
            return {name: zf.read(name) for name in names}
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError, OSError) as exc:
        raise BundleError(
            f"{path}: not a readable bundle zip ({exc}); the file is corrupt or truncated. "
            "Copy it again from its source or retrain"
        ) from None


def _verified(path: Path, members: dict[str, bytes]) -> dict[str, bytes]:
    manifest = _parse_manifest(members.pop(MANIFEST_MEMBER), path)
    missing = [name for name in CONTENT_MEMBERS if name not in members]
    if missing:
        raise BundleError(f"{path}: member(s) {missing} missing; the bundle is incomplete")
    unlisted = sorted(set(members) - set(manifest))
    absent = sorted(set(manifest) - set(members))
    if unlisted or absent:
        raise BundleError(
            f"{path}: members and {MANIFEST_MEMBER} disagree (not listed: {unlisted}, listed but absent: "
            f"{absent}); the bundle was tampered with"
        )
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != manifest[name]:
            raise BundleError(
                f"{path}: member {name} does not match its SHA256 in {MANIFEST_MEMBER}; "
                "the bundle was modified after it was written"
            )
    return members


def _json_member(members: dict[str, bytes], name: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(members[name])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: {name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BundleError(f"{path}: {name} must hold a JSON object, got {type(value).__name__}")
    return value


def read_bundle_config(path: str | os.PathLike[str]) -> tuple[BundleConfig, dict[str, Any]]:
    """Verify the bundle and return (config, metadata) without building the network."""
    bundle_path = Path(path)
    members = _load_verified(bundle_path)
    return _parse_config(members, bundle_path), _json_member(members, METADATA_MEMBER, bundle_path)


def _load_verified(path: Path) -> dict[str, bytes]:
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file; pass the {BUNDLE_NAME} written by `ptycho-torch train`")
    _check_sidecar(path)
    return _verified(path, _read_members(path))


def _parse_config(members: dict[str, bytes], path: Path) -> BundleConfig:
    raw = _json_member(members, CONFIG_MEMBER, path)
    if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format {raw.get('format')!r} version {raw.get('format_version')!r} is not "
            f"{FORMAT!r} version {FORMAT_VERSION}; use the ptycho_torch version that wrote it"
        )
    try:
        return BundleConfig(model=ModelConfig.from_dict(raw.get("model", {})),
                            data=DataConfig.from_dict(raw.get("data", {})))
    except (ModelConfigError, TypeError) as exc:
        raise BundleError(f"{path}: invalid configuration: {exc}") from None


def load_bundle(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Bundle:
    """Verify (sidecar if present, manifest, zip CRCs) and rebuild the network; raises BundleError."""
    bundle_path = Path(path)
    members = _load_verified(bundle_path)
    config = _parse_config(members, bundle_path)
    metadata = _json_member(members, METADATA_MEMBER, bundle_path)
    tensors = _from_safetensors(members[WEIGHTS_MEMBER], bundle_path)
    try:
        probe, scale = tensors["probe"], float(tensors["intensity_scale"])
        model = PtychoPINN(config.model, probe, scale)
        model.load_state_dict(tensors, strict=True)
    except (KeyError, RuntimeError, ModelConfigError) as exc:
        raise BundleError(f"{bundle_path}: the weights do not fit the stored configuration: {exc}") from None
    model.eval()
    return Bundle(model=model.to(map_location), config=config, metadata=metadata, path=bundle_path)
