"""Running a suite: a plan of cells, the cell functions, executors, the resume journal and the guard."""

from robustinv.run.driver import run_suite

__all__ = ["run_suite"]
