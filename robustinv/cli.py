"""The `robustinv` command: parse, call the library, print, map errors to exit codes.

Exit codes (see `robustinv.terminal`): 0 success, 1 failed gate, 2 usage or input error,
3 internal error, 130 interrupted, 143 terminated.

This module holds the command group; the commands live in `robustinv.commands`, one module per
group of them. Each imports torch (through the library) only inside its body, so `--help`,
`history`, `report` and `gate` start without it.
"""

from __future__ import annotations

import click

import robustinv
from robustinv.commands.common import BASELINE_HELP, STORE_OPTION
from robustinv.commands.explain import explain_command
from robustinv.commands.gate import gate_command
from robustinv.commands.inversion import generate_command, invert_command
from robustinv.commands.lookup import REGISTRY_KINDS, history_command, list_command, registry_of
from robustinv.commands.report import report_command
from robustinv.commands.run import run_command, summary_table
from robustinv.terminal import setup_logging

__all__ = [
    "BASELINE_HELP", "REGISTRY_KINDS", "STORE_OPTION", "explain_command", "gate_command", "generate_command", "history_command",
    "invert_command", "list_command", "main", "registry_of", "report_command", "run_command", "summary_table",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(robustinv.__version__, prog_name="robustinv")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
def main(quiet: bool) -> None:
    """Robustness harness for PyTorch image classifiers."""
    setup_logging(quiet)


for _command in (list_command, run_command, gate_command, history_command, report_command, generate_command,
                 invert_command, explain_command):
    main.add_command(_command)


if __name__ == "__main__":
    main()
