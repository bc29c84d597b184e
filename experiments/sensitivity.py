"""`python -m experiments.sensitivity` from a checkout: the `tfprune sensitivity` command (tfprune/cli/sensitivity.py),
with the same flags, messages and exit codes."""

from tfprune.cli import sensitivity

if __name__ == "__main__":
    sensitivity.run()
