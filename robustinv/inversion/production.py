"""Mass production: stream verified adversarial samples to disk in fixed-size shards.

Each sample is a generator draw, refined by `refine_steps` projected gradient steps when the
request asks for them (on robust models the draws alone rarely fool), and kept only when the
model classifies its source correctly and the sample wrongly (or as its target).

Shard s is a pure function of (generator, model, source images, seed, s): its batches and their
codes, noise and dropout masks are seeded by (seed, s, batch). A shard is written atomically
(tensors, then its records CSV last), so an interrupted run leaves whole shards only, and
running the same request again skips them and continues where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields as dataclass_fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn

from robustinv.checkpoints import file_problem
from robustinv.files import atomic_write
from robustinv.errors import RobustinvError
from robustinv.inversion.generator import PerturbGenerator
from robustinv.inversion.refine import jitter, refine
from robustinv.inversion.sampling import sample_perturbations
from robustinv.paths import folder_problem
from robustinv.runtime import derive_seed, predict_logits
from robustinv.text import first_line

MAX_BATCHES_PER_SHARD = 200


@dataclass(frozen=True)
class ProductionRequest:
    """What identifies a production run; a folder holds samples of one request only."""

    suite: str
    model: str
    model_fingerprint: str
    attack: str
    generator_key: str
    eps: float
    targeted: bool
    n: int
    shard_size: int
    seed: int
    refine_steps: int = 0
    refine_step_size: float = 0.0
    refine_aimed: bool = False  # untargeted: refine each draw toward its coded class
    refine_jitter: float = 0.0  # random start around each draw, as a share of ε

    @property
    def shards(self) -> int:
        return math.ceil(self.n / self.shard_size)

    def shard_len(self, shard: int) -> int:
        return min(self.shard_size, self.n - shard * self.shard_size)


def shard_paths(out_dir: Path, shard: int) -> tuple[Path, Path]:
    return out_dir / f"shard-{shard:05d}.safetensors", out_dir / f"shard-{shard:05d}.csv"


@dataclass(frozen=True)
class Produced:
    """What a production run holds and what this call added: shards written now and the seconds they took."""

    samples: int
    distinct_inputs: int  # source images with at least one verified sample
    written_shards: int
    written_samples: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        """Verified samples per second of this call's production (NaN when it wrote nothing)."""
        return self.written_samples / self.seconds if self.written_samples else math.nan


def produce(
    request: ProductionRequest, generator: PerturbGenerator, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
    out_dir: Path, *, tau: float, batch_size: int = 256, on_shard: Callable[[int, bool], None] | None = None,
) -> Produced:
    """Write the request's shards into `out_dir`, skipping complete ones."""
    _claim(out_dir, request)
    written, written_samples, start = 0, 0, time.perf_counter()
    sources: set[int] = set()
    for shard in range(request.shards):
        tensors_path, records_path = shard_paths(out_dir, shard)
        done = tensors_path.is_file() and records_path.is_file()
        if not done:
            tensors = _make_shard(request, shard, generator, model, x, y, tau=tau, batch_size=batch_size)
            atomic_write(tensors_path, lambda tmp: save_file(tensors, str(tmp)))
            records = pd.DataFrame({k: v.tolist() for k, v in tensors.items() if v.ndim == 1})
            atomic_write(records_path, lambda tmp: records.to_csv(tmp, index=False, float_format="%.6g"))
            written += 1
            written_samples += request.shard_len(shard)
        sources.update(_sources(records_path))
        if on_shard is not None:
            on_shard(shard, done)
    return Produced(request.n, len(sources), written, written_samples, time.perf_counter() - start)


def check_out_dir(out_dir: Path) -> dict[str, Any] | None:
    """The request a production folder holds (None for a new folder); a folder robustinv cannot use is refused.

    `generate` calls this before anything trains: a damaged `manifest.json` costs no generator.
    """
    problem = folder_problem(out_dir)
    if problem is not None:
        raise RobustinvError(f"--out: {problem}")
    manifest = out_dir / "manifest.json"
    if not out_dir.is_dir() or not (manifest.exists() or manifest.is_symlink()):
        return None
    unreadable = file_problem(manifest)
    if unreadable is not None:
        raise RobustinvError(f"{manifest} {unreadable}; use a new --out folder")
    try:
        found = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RobustinvError(f"{manifest} is damaged ({first_line(exc)}); it says which request the samples in "
                             f"{out_dir} belong to, so use a new --out folder") from None
    fields = {f.name: f.type for f in dataclass_fields(ProductionRequest)}
    if not isinstance(found, dict) or set(found) != set(fields):
        raise RobustinvError(f"{manifest} is not a robustinv manifest (expected an object with the keys "
                             f"{', '.join(fields)}); use a new --out folder")
    return found


def _claim(out_dir: Path, request: ProductionRequest) -> None:
    manifest = out_dir / "manifest.json"
    wanted = asdict(request)
    found = check_out_dir(out_dir)
    if found is not None:
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise RobustinvError(f"{out_dir} holds samples of another request (differs in {', '.join(changed)}); "
                                 "use a new --out folder")
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(manifest, lambda tmp: tmp.write_text(json.dumps(wanted, indent=2)))
    except OSError as exc:
        raise RobustinvError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None


def _sources(records_path: Path) -> list[int]:
    """The source images a finished shard's records name; a damaged records file is refused, not guessed at."""
    try:
        column = pd.read_csv(records_path, usecols=["source_index"])["source_index"]
        if not pd.api.types.is_integer_dtype(column):
            raise ValueError("source_index holds non-integers")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise RobustinvError(f"{records_path} is damaged ({first_line(exc)}); delete it and its .safetensors "
                             "to produce the shard again") from None
    return [int(v) for v in column]


@torch.no_grad()
def _make_shard(
    request: ProductionRequest, shard: int, generator: PerturbGenerator, model: nn.Module,
    x: torch.Tensor, y: torch.Tensor, *, tau: float, batch_size: int,
) -> dict[str, torch.Tensor]:
    """Draw batches until the shard holds its number of verified samples (source correct, then fooled)."""
    size, kept, count = request.shard_len(shard), [], 0
    for batch in range(MAX_BATCHES_PER_SHARD):
        index = (shard * request.shard_size + batch * batch_size + torch.arange(batch_size)) % len(y)
        xb, yb = x[index], y[index]
        seed = derive_seed(request.seed, "shard", shard, batch)
        samples, targets = sample_perturbations(generator, xb, yb, eps=request.eps, draws=1,
                                                targeted=request.targeted, tau=tau, seed=seed, batch_size=batch_size)
        if request.refine_steps:
            samples = jitter(xb, samples, eps=request.eps, spread=request.refine_jitter, seed=seed)
        x_adv = refine(model, xb, samples, targets if request.targeted else yb, eps=request.eps,
                       steps=request.refine_steps, step_size=request.refine_step_size, targeted=request.targeted,
                       aims=targets if request.refine_aimed else None, batch_size=batch_size)[0]
        target = targets[0]
        probs = predict_logits(model, x_adv, batch_size=batch_size).softmax(1)
        confidence, predicted = probs.max(1)
        clean = predict_logits(model, xb, batch_size=batch_size).argmax(1)
        fooled = predicted == target if request.targeted else predicted != yb
        ok = ((clean == yb) & fooled).nonzero().squeeze(1)[: size - count]
        kept.append({
            "x_adv": x_adv[ok], "source_index": index[ok], "true_label": yb[ok],
            "target": target[ok] if request.targeted else torch.full_like(yb[ok], -1),
            "predicted": predicted[ok], "confidence": confidence[ok].float(),
            "linf": (x_adv[ok] - xb[ok]).flatten(1).abs().amax(1),
        })
        count += len(ok)
        if count == size:
            return {key: torch.cat([part[key] for part in kept]).contiguous() for key in kept[0]}
    raise RobustinvError(
        f"shard {shard}: only {count} of {size} samples verified after {MAX_BATCHES_PER_SHARD} batches; "
        "the generator rarely fools this model (refine its draws with more refine_steps, train it longer or raise ε)"
    )
