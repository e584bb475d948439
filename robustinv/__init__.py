"""robustinv: how robust is this classifier release, where does it break, did it get worse.

    from robustinv import load_suite, run_suite
    result = run_suite(load_suite(Path("benchmarks/quickstart.toml")))
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("robustinv")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

from robustinv.attacks import ATTACKS, build_attack  # noqa: E402
from robustinv.data import DATASETS, load_dataset  # noqa: E402
from robustinv.errors import RobustinvError  # noqa: E402
from robustinv.models import MODELS, model_builder, prepare_model, prepare_models  # noqa: E402
from robustinv.records import RunResult  # noqa: E402
from robustinv.runner import run_suite  # noqa: E402
from robustinv.suite import Suite, load_suite, parse_suite  # noqa: E402
from robustinv.training import DEFENSES, train  # noqa: E402

__all__ = [
    "ATTACKS", "DATASETS", "DEFENSES", "MODELS", "RobustinvError", "RunResult", "Suite", "__version__",
    "build_attack", "load_dataset", "load_suite", "model_builder", "parse_suite", "prepare_model", "prepare_models", "run_suite",
    "train",
]
