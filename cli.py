"""The `robustinv` command; its code is `robustinv.cli` (the console script's entry point)."""

from robustinv.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
