"""`python -m experiments.export_tflite` from a checkout: the `tfprune export` command
(tfprune/cli/export.py), with the same flags, messages and exit codes."""

from tfprune.cli import export

if __name__ == "__main__":
    export.run()
