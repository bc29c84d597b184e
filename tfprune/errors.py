"""Errors that tfprune raises for bad input.

Scripts catch ``TfpruneError`` and print its message without a traceback; everything else is a
bug and keeps its traceback.
"""


class TfpruneError(ValueError):
    """Bad input: the message names what was wrong and what is allowed."""


class UnknownNameError(TfpruneError, KeyError):
    """A name that is not in a registry."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class DatasetNotAvailableError(TfpruneError):
    """A dataset that is not prepared on this machine (no network to download it)."""


class RunDirectoryError(TfpruneError):
    """An output directory that holds a different run."""
