"""`ray`: cells as Ray tasks, on a local Ray instance or, with `address`, on an existing cluster.

Each task asks for the suite's threads per cell as `num_cpus` (and a GPU share when the suite
runs on CUDA); Ray retries a task once when its worker dies. Workers must see the same files as
the driver (the dataset and the model cache): on a real cluster, a shared `cache_dir`. The
optional extra `robustinv[ray]` installs Ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from robustinv.errors import RobustinvError
from robustinv.run.cells import Done, execute
from robustinv.run.executors.base import EXECUTORS, Event, Executor, ExecutorOptions
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import set_threads


def _run_cell(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any], progress: Any) -> Done:
    import ray

    set_threads(setting.threads)
    report = None if progress is None else (lambda key, step, steps: progress.put_nowait((key, step, steps)))
    done = execute(setting, spec, inputs, report)
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
        self._started_here = False
        self._slots = 1

    def start(self) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise RobustinvError("the ray executor needs Ray: pip install 'robustinv[ray]'") from None
        if not ray.is_initialized():
            if self.options.address is not None:
                ray.init(address=self.options.address, log_to_driver=False, configure_logging=False)
            else:
                ray.init(num_cpus=self.options.slots() * self.options.threads, log_to_driver=False,
                         configure_logging=False, include_dashboard=False)
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
            self._progress.shutdown()
            self._progress = None
        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        assert self._task is not None, "start the executor first"
        future: Future[Done] = self._task.remote(setting, spec, dict(inputs), self._progress).future()
        return future

    def original(self, exc: BaseException) -> BaseException:
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, BaseException) else exc

    def events(self) -> list[Event]:
        if self._progress is None:
            return []
        found = []
        while not self._progress.empty():
            found.append(self._progress.get_nowait())
        return found
