"""`python -m experiments.sweep` from a checkout: the `tfprune sweep` command (tfprune/cli/sweep.py),
with the same flags, messages and exit codes."""

from tfprune.cli import sweep

if __name__ == "__main__":
    sweep.run()
