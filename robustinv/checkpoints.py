"""Checkpoints: content-hash keys, atomic safetensors + JSON writes, and safe loading.

Nothing here unpickles arbitrary objects: weights come from safetensors, from
`torch.load(weights_only=True)` or from TorchScript.
"""

from __future__ import annotations

import errno
import hashlib
import json
import pickle
import pickletools
import re
import stat
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustinv.errors import ModelError
from robustinv.files import atomic_write
from robustinv.text import first_line


def content_key(payload: Mapping[str, Any]) -> str:
    """A short, stable hash of everything that determines an artifact."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def state_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """A hash of a state dict's names, shapes and values."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_checkpoint(stem: Path, state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> None:
    """Write `stem.safetensors` then `stem.json`; the JSON's presence marks a complete checkpoint."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in state.items()}
    weights, meta = checkpoint_files(stem)
    atomic_write(weights, lambda p: save_file(tensors, str(p)))
    atomic_write(meta, lambda p: p.write_text(json.dumps(config, indent=2, default=str)))


def checkpoint_files(stem: Path) -> tuple[Path, Path]:
    """The weights and config paths of a checkpoint (the stem may itself contain dots)."""
    return stem.parent / f"{stem.name}.safetensors", stem.parent / f"{stem.name}.json"


def load_checkpoint(stem: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The state dict and config at `stem`, or None when no complete checkpoint is there."""
    weights, meta = checkpoint_files(stem)
    if not (weights.is_file() and meta.is_file()):
        return None
    try:
        config = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ModelError(f"cached checkpoint {meta} is damaged ({first_line(exc)}); delete it to train again") from None
    if not isinstance(config, dict):
        raise ModelError(f"cached checkpoint {meta} is damaged (not a JSON object); delete it to train again")
    return load_state_file(weights), config


def file_problem(path: Path) -> str | None:
    """Why `path` is no regular file to read a model from (missing, a symlink loop, a folder, a FIFO, a device)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "does not exist" + (" (a symlink to nowhere)" if path.is_symlink() else "")
    except OSError as exc:
        return "is a symlink loop" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISSOCK, "a socket"))
        kind = next((name for test, name in kinds if test(info.st_mode)), "a special file")
        return f"is {kind}, not a regular file"
    return None


def check_model_file(path: Path, what: str) -> None:
    """Refuse, before reading a byte, a `what` (weights, TorchScript) file that is no regular file."""
    problem = file_problem(path)
    if problem is not None:
        raise ModelError(f"{what} file {path} {problem}")


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a `torch.save`d dict of tensors, always onto the CPU."""
    check_model_file(path, "weights")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"cannot read safetensors file {path} (corrupt or truncated?): {first_line(exc)}") from None
    try:
        with warnings.catch_warnings():  # torch warns about a raw pickle's protocol before refusing it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc) or not _is_pickle_stream(path):
            raise ModelError(f"cannot read weights file {path} (corrupt or truncated?)") from None
        unsafe = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        needs = f" ({unsafe.group(1)})" if unsafe else ""
        raise ModelError(
            f"refusing to load {path}: it needs arbitrary unpickling{needs}, which can run code. "
            "Re-save it as a plain state dict (torch.save(model.state_dict(), path)) or as safetensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read weights file {path} (corrupt or truncated?): {first_line(exc)}") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelError(f"weights file {path} does not hold a state dict (a mapping of names to tensors)")
    return dict(loaded)


def _is_pickle_stream(path: Path) -> bool:
    """Whether the file (or torch.save's zip member data.pkl) parses as pickle opcodes.

    `pickletools` only reads the opcodes, it executes none: a complete, well-formed pickle that
    the safe loader refused is an unsafe one, anything else is damaged.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next(name for name in archive.namelist() if name.endswith("data.pkl"))
                data = archive.read(member)
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
    except Exception:  # any parse failure means: not a (complete) pickle
        return False
    return True
