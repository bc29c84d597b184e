"""`python -m experiments.train` from a checkout: the `tfprune train` command (tfprune/cli/train.py),
with the same flags, messages and exit codes."""

from tfprune.cli import train

if __name__ == "__main__":
    train.run()
