"""`python -m experiments.tune` from a checkout: the `tfprune tune` command (tfprune/cli/tune.py),
with the same flags, messages and exit codes."""

from tfprune.cli import tune

if __name__ == "__main__":
    tune.run()
