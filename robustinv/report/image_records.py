"""The run folder's array records: sample grids and explanations, each a JSON list beside a safetensors file.

Entry i of the JSON list owns the tensors named with its index (`grid3`; `images3`, `maps3`).
Both files come together; a missing tensor, a count that does not match or an entry that does
not fit its arrays is a `RunFolderError` naming the file and the entry. Nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors

from robustinv.records import Explanation, RecordError, SampleGrid
from robustinv.report.folder_json import RunFolderError, json_object, read_json

SAMPLES_JSON = "samples.json"
SAMPLES_TENSORS = "samples.safetensors"
EXPLAIN_JSON = "explanations.json"
EXPLAIN_TENSORS = "explanations.safetensors"

T = TypeVar("T")


def parse_grids(meta_data: bytes | None, tensor_data: bytes | None, folder: Path) -> list[SampleGrid]:
    return _indexed(meta_data, tensor_data, folder, (SAMPLES_JSON, SAMPLES_TENSORS), "sample grids", ("grid",),
                    lambda meta, arrays: SampleGrid.from_meta(meta, *arrays))


def parse_explanations(meta_data: bytes | None, tensor_data: bytes | None, folder: Path) -> list[Explanation]:
    return _indexed(meta_data, tensor_data, folder, (EXPLAIN_JSON, EXPLAIN_TENSORS), "explanations",
                    ("images", "maps"), lambda meta, arrays: Explanation.from_meta(meta, *arrays))


def _indexed(meta_data: bytes | None, tensor_data: bytes | None, folder: Path, names: tuple[str, str], what: str,
             prefixes: tuple[str, ...], build: Callable[[dict[str, Any], list[np.ndarray]], T]) -> list[T]:
    if meta_data is None or tensor_data is None:
        if (meta_data is None) != (tensor_data is None):
            raise RunFolderError(f"{folder}: {names[0]} and {names[1]} come together; one is missing")
        return []
    path = folder / names[0]
    meta = read_json(meta_data, path)
    try:
        tensors = load_tensors(tensor_data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunFolderError(f"{folder / names[1]}: cannot read ({exc})") from None
    except (KeyError, TypeError) as exc:  # a dtype numpy has no type for (bfloat16, float8)
        raise RunFolderError(f"{folder / names[1]}: cannot read (unsupported dtype {exc}; images are uint8)") from None
    per_entry = len(prefixes)
    if not isinstance(meta, list) or per_entry * len(meta) != len(tensors):
        raise RunFolderError(f"{path}: expected a list of {len(tensors) // per_entry} {what}, "
                             f"{per_entry} tensor{'s' if per_entry > 1 else ''} each")
    found = []
    for i, entry in enumerate(meta):
        keys = [f"{prefix}{i}" for prefix in prefixes]
        try:
            if any(key not in tensors for key in keys):
                raise RecordError(f"no tensor{'s' if per_entry > 1 else ''} {' and '.join(keys)}")
            found.append(build(json_object(entry, path, f"[{i}]"), [tensors[key] for key in keys]))
        except RecordError as exc:
            raise RunFolderError(f"{path}: [{i}]: {exc}") from None
    return found
