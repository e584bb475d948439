"""`ray`: cells as Ray tasks, on a local Ray instance or, with `address`, on an existing cluster.

Each task asks for the suite's threads per cell as `num_cpus` (and a GPU share when the suite
runs on CUDA); Ray retries a task once when its worker dies. Workers must see the same files as
the driver (the dataset and the model cache): on a real cluster, a shared `cache_dir`. A task
returns its cell's `Done` or a `CellFailure` (see `failures`), and sends its progress and its
`robustinv` log records to the driver through a Ray queue, which the driver re-emits in its own
log (Ray's own forwarding of worker output stays off). The optional extra `robustinv[ray]`
installs Ray; without it the executor is refused before any data is read.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from typing import Any

from robustinv.errors import RobustinvError
from robustinv.run.cells import Done, execute
from robustinv.run.executors.base import EXECUTORS, Event, Executor, ExecutorOptions
from robustinv.run.executors.channel import LOGGER, Inbox, driver_level, forward_logs
from robustinv.run.executors.failures import CellFailure, capture, worker_died
from robustinv.run.executors.settle import chain
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import set_threads
from robustinv.text import first_line

NEEDS_RAY = "the ray executor needs Ray, which is not installed: pip install 'robustinv[ray]'"


def _run_cell(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], progress: Any,
              level: int = logging.INFO) -> Done | CellFailure:
    import ray

    set_threads(setting.threads)
    send = None if progress is None else progress.put_nowait
    logger = logging.getLogger(LOGGER)
    before = (list(logger.handlers), logger.level, logger.propagate)
    if send is not None:
        forward_logs(send, level)
    report = None if send is None else (lambda key, step, steps: send(("event", key, step, steps)))
    try:
        done = capture(setting, spec, lambda: execute(setting, spec, inputs, report))
    finally:
        logger.handlers[:], logger.level, logger.propagate = before
    if isinstance(done, CellFailure):
        return done
    node = ray.get_runtime_context().get_node_id()
    return replace(done, worker=f"ray node {node[:12]} {done.worker}")


@EXECUTORS.register("ray")
class RayCluster(Executor):
    """Cells as Ray tasks, on a local Ray instance or an existing cluster (--address)."""

    name = "ray"

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self._task: Any = None
        self._progress: Any = None
        self._inbox = Inbox()
        self._started_here = False
        self._slots = 1

    @classmethod
    def preflight(cls, workers: int | None = None) -> None:
        super().preflight(workers)
        if importlib.util.find_spec("ray") is None:
            raise RobustinvError(NEEDS_RAY)

    def start(self) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise RobustinvError(NEEDS_RAY) from None
        if not ray.is_initialized():
            where = f"join the Ray cluster at {self.options.address}" if self.options.address else "start Ray"
            try:
                if self.options.address is not None:
                    ray.init(address=self.options.address, log_to_driver=False, configure_logging=False)
                else:
                    ray.init(num_cpus=self.options.slots() * self.options.threads, log_to_driver=False,
                             configure_logging=False, include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RobustinvError(f"cannot {where}: {first_line(exc)}") from None
            self._started_here = True
        self._task = ray.remote(_run_cell).options(
            num_cpus=self.options.threads, num_gpus=self.options.gpus_per_cell, max_retries=1,
        )
        self._progress = Queue()
        self._slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // self.options.threads)

    @property
    def slots(self) -> int:
        """Cells at once: the cluster's CPUs divided by the threads per cell."""
        return self._slots if self._task is not None else self.options.slots()

    def close(self) -> None:
        import ray

        if self._progress is not None:
            self.events()
            self._progress.shutdown()
            self._progress = None
        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        assert self._task is not None, "start the executor first"
        inner: Future[Any] = self._task.remote(setting, spec, dict(inputs), self._progress, driver_level()).future()
        return chain(inner, partial(_translate, setting, spec))

    def events(self) -> list[Event]:
        if self._progress is None:
            return []
        found = []
        while not self._progress.empty():
            found.append(self._progress.get_nowait())
        return self._inbox.sort(found)


def _translate(setting: RunSetting, spec: CellSpec, error: BaseException) -> BaseException:
    """Ray's own errors for a task: a worker that died (twice: Ray retried it) names the cell and its model."""
    from ray import exceptions

    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.OutOfMemoryError)):
        return worker_died(setting, spec, "its Ray worker crashed" if isinstance(error, exceptions.WorkerCrashedError)
                           else "Ray's memory monitor killed it")
    cause = getattr(error, "cause", None)  # a task's own exception, wrapped (only KeyboardInterrupt is left)
    return cause if isinstance(cause, BaseException) else error
