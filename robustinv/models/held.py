"""Models held in memory (`robustinv.evaluate` on the model in hand), named to a run like a user architecture.

`hold` keeps a copy of the module under a key made of its class and its state, and returns the
`arch` and `arch_kwargs` that build it back in this process (`held`, a model builder). The run
then treats it like any user model: probed, fingerprinted by that key, its weights loaded from
the file `hold` wrote. The copy leaves the caller's module exactly as it was (mode, weights).
Held models live in one process: executors that run cells elsewhere cannot build them.
"""

from __future__ import annotations

import copy

from torch import nn

from robustinv.checkpoints import content_key, state_fingerprint
from robustinv.errors import ModelError
from robustinv.models.user import model_builder

ARCH = "robustinv.models.held:held"
_HELD: dict[str, nn.Module] = {}


def hold(module: nn.Module) -> str:
    """Keep a copy of `module`; returns its key (a hash of its class and its state)."""
    if not isinstance(module, nn.Module):
        raise ModelError(f"evaluate() needs a torch.nn.Module, got {type(module).__name__}")
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    key = content_key({"class": kind, "state": state_fingerprint(module.state_dict())})
    if key not in _HELD:
        try:
            _HELD[key] = copy.deepcopy(module)
        except Exception as exc:  # a module that cannot be copied: user code may raise anything
            raise ModelError(f"cannot copy model {kind} to evaluate it: {type(exc).__name__}: {exc}") from None
    return key


@model_builder
def held(key: str) -> nn.Module:
    """The held model `key` (see `hold`)."""
    try:
        return _HELD[key]
    except KeyError:
        raise ModelError(f"no model held under {key!r} in this process: a model passed to evaluate() exists only "
                         "in the process that called it (save its weights and use a suite to run it elsewhere)"
                         ) from None
