"""Where cells run: in this process (`serial`), in local worker processes (`process`), or on Ray (`ray`).

Every executor runs the same pure cell functions with the same thread count per cell, so the
numbers do not depend on which one ran them. Adding one is a file here and a registry line.
"""

from robustinv.run.executors import local, pool, ray_cluster  # noqa: F401  (fill the registry)
from robustinv.run.executors.base import EXECUTORS, Executor, ExecutorOptions

__all__ = ["EXECUTORS", "Executor", "ExecutorOptions"]
