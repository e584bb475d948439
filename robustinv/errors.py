"""Errors that reach a user as one clear line (the CLI maps them to exit codes)."""

from __future__ import annotations


class RobustinvError(Exception):
    """Bad input from the user: a suite, a name, a file or a value. The CLI exits 2."""


class UnknownNameError(RobustinvError):
    """A name that is not in a registry; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}")
        self.kind = kind
        self.name = name
        self.valid = valid


class DataError(RobustinvError):
    """A dataset that cannot be found, read or trusted."""


class ModelError(RobustinvError):
    """A model that cannot be built, loaded or evaluated on the dataset."""
