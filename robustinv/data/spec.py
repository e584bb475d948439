"""How a suite names its dataset."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from robustinv.config import Config
from robustinv.data.dataset import DATASETS, takes_root
from robustinv.paths import resolve_path


class DatasetSpec(Config):
    """The `[dataset]` table: a registered name, where its files are, how many test images to attack."""

    name: str
    root: Path | None = None
    n_eval: int | None = Field(None, ge=1, description="seeded subset of the test split; all when omitted")
    download: bool = Field(True, description="let torchvision download when no local files are found")

    _resolve = field_validator("root")(resolve_path)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return DATASETS.checked_name(name)

    @model_validator(mode="after")
    def _root_is_read(self) -> DatasetSpec:
        if self.root is not None and not takes_root(DATASETS.get(self.name)):
            raise ValueError(f"dataset {self.name!r} is bundled with its package and reads no files: drop 'root'")
        return self
