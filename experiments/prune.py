"""`python -m experiments.prune` from a checkout: the `tfprune prune` command (tfprune/cli/prune.py),
with the same flags, messages and exit codes."""

from tfprune.cli import prune

if __name__ == "__main__":
    prune.run()
