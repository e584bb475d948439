"""The `robustinv` subcommands, one module per group; `robustinv.cli` gathers them under `main`."""
