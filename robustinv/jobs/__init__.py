"""Jobs: `generate`, `invert` and `explain`, the commands' work beside a run.

They use the libraries (attacks, inversion, interpret, run, report); no library imports a job.
"""
