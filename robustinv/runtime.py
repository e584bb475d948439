"""Device choice, seeding and batched inference: the small shared mechanics of every run."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch
from torch import nn

from robustinv.errors import ModelError


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; `cpu` and `cuda` are taken as they are.

    On CUDA, kernels are made deterministic: the same suite and seed must give the same numbers
    on the same machine, which cuDNN's autotuned and atomic-add kernels do not.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("device 'cuda' was asked for but no CUDA device is available; use 'auto' or 'cpu'")
        _deterministic_cuda()
    return torch.device(device)


def _deterministic_cuda() -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def kernel_profile(device: torch.device) -> str:
    """What besides the seed decides a trained weight: the device kind and, on the CPU, torch's thread count.

    Float reductions split over a different number of threads add up in another order, so a
    model trained on 1 thread and on 2 ends with different weights.
    """
    return f"cpu-{torch.get_num_threads()}t" if device.type == "cpu" else device.type


def set_threads(threads: int) -> None:
    """Run torch's CPU kernels on `threads` threads (what a cell's numbers depend on, see `kernel_profile`)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (ART's random starts draw from it) and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one cell that depends on the suite seed and the cell, not on run order."""
    text = "|".join(map(str, (seed, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """Logits for `x` in batches on the model's device, returned on the CPU; NaN logits raise."""
    device = model_device(model)
    model.eval()
    outputs = [model(batch.to(device)).float().cpu() for batch in x.split(batch_size)]
    logits = torch.cat(outputs)
    if not torch.isfinite(logits).all():
        raise ModelError("the model returned NaN or infinite logits")
    return logits


def model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")
