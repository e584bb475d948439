"""How a suite names its dataset, and loading what it names."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from robustinv.config import Config
from robustinv.data.dataset import DATASETS, Dataset, takes_root
from robustinv.paths import resolve_path

MAX_SIDE = 4096  # pixels per side after `resize`; larger is a typo, not an image classifier's input

Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]

OPTIONS = ("resize", "grayscale")
"""The `[dataset]` keys that go to a loader as keyword arguments; a loader takes those its signature names."""


class DatasetSpec(Config):
    """The `[dataset]` table: a registered name, where its files are, how many test images to attack."""

    name: str
    root: Path | None = None
    n_eval: int | None = Field(None, ge=1, description="seeded subset of the test split; all when omitted")
    download: bool = Field(True, description="let torchvision download when no local files are found")
    resize: tuple[Side, Side] | None = Field(None, description="[H, W] every image is resized to (imagefolder)")
    grayscale: bool | None = Field(None, strict=True, description="convert every image to one grey channel "
                                   "(imagefolder)")

    _resolve = field_validator("root")(resolve_path)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return DATASETS.checked_name(name)

    @field_validator("resize", mode="before")
    @classmethod
    def _two_sides(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) != 2:
            raise ValueError(f"expected [H, W], two sizes in pixels; got {len(value)} value(s)")
        return value

    @field_validator(*OPTIONS)
    @classmethod
    def _taken(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("name")
        if value is None or name is None or info.field_name in options_of(name):
            return value
        readers = [other for other in DATASETS.names() if info.field_name in options_of(other)]
        raise ValueError(f"dataset {name!r} takes no {info.field_name!r}; it applies to {', '.join(readers)}")

    @model_validator(mode="after")
    def _root_is_read(self) -> DatasetSpec:
        if self.root is not None and not takes_root(DATASETS.get(self.name)):
            raise ValueError(f"dataset {self.name!r} is bundled with its package and reads no files: drop 'root'")
        return self

    def load(self) -> Dataset:
        """The dataset this table names, read by its loader with the options the table sets."""
        options = {key: getattr(self, key) for key in OPTIONS if getattr(self, key) is not None}
        return DATASETS.get(self.name)(self.root, download=self.download, **options)


def options_of(name: str) -> set[str]:
    """The `OPTIONS` a registered dataset's loader takes: the keyword parameters it declares."""
    parameters = inspect.signature(DATASETS.get(name)).parameters
    return {key for key in OPTIONS if key in parameters}
