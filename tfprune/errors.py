"""The two kinds of error tfprune raises.

``TfpruneError`` is bad input: something the user can fix. Its message names the argument, the
rule and the value received. Scripts print it on one line, without a traceback, and exit 2.

``InternalError`` is a broken invariant inside tfprune: a bug, not the user's fault. It keeps its
traceback and says so.
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


class RunDirectoryInUseError(RunDirectoryError):
    """An output directory another running job holds (jobs/runlock.py): the holder is named."""


class ModelTypeError(TfpruneError, TypeError):
    """A model of a kind tfprune cannot take (a Keras 3 model where tf_keras is needed)."""


class TranslationError(TfpruneError):
    """A model that cannot be translated between Keras 3 and tf_keras (the layer is named)."""


class InternalError(RuntimeError):
    """An invariant of tfprune's own code failed: a bug to report, not bad input."""

    def __init__(self, message):
        super().__init__(f"internal error (a bug in tfprune, please report it): {message}")
