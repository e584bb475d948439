"""How a suite names its dataset."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from robustinv.data.dataset import DATASETS
from robustinv.errors import UnknownNameError
from robustinv.paths import resolve_path


class DatasetSpec(BaseModel):
    """The `[dataset]` table: a registered name, where its files are, how many test images to attack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    root: Path | None = None
    n_eval: int | None = Field(None, ge=1, description="seeded subset of the test split; all when omitted")
    download: bool = Field(True, description="let torchvision download when no local files are found")

    _resolve = field_validator("root")(resolve_path)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        try:
            DATASETS.get(name)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return name
