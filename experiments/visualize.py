"""`python -m experiments.visualize` from a checkout: the `tfprune visualize` command (tfprune/cli/visualize.py),
with the same flags, messages and exit codes."""

from tfprune.cli import visualize

if __name__ == "__main__":
    visualize.run()
