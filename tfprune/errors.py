"""The two kinds of error tfprune raises, and the one wording of file-system faults.

``TfpruneError`` is bad input: something the user can fix. Its message names the argument, the
rule and the value received. Scripts print it on one line, without a traceback, and exit 2.

``InternalError`` is a broken invariant inside tfprune: a bug, not the user's fault. It keeps its
traceback and says so.

``file_fault_message`` words a file-system fault, Python's (OSError) or TensorFlow's own
writers' (a tf.errors.OpError), as "'<path>': <reason>"; scripts print it on one line and exit 2.
Nothing here imports TensorFlow.
"""

import errno
import os
import re
import sys


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


# --- file-system faults: the one wording ---------------------------------------------------------
#
# Python's writers raise OSError. TensorFlow's own writers (checkpoints, SavedModel, event files,
# tf.io.gfile, the converter's temporary files) raise a tf.errors.OpError instead, whose class
# comes from the errno (TensorFlow's ErrnoToCode: ENOSPC and EDQUOT -> ResourceExhaustedError,
# EFBIG -> OutOfRangeError, EACCES, EPERM and EROFS -> PermissionDeniedError, ENOENT ->
# NotFoundError, EISDIR and ENOTDIR -> FailedPreconditionError) and whose message is
# "<context>; <strerror>", the context ending in the file's path where TensorFlow knows it.
# Recognised by class and that strerror, so an out-of-memory ResourceExhaustedError or an
# OutOfRangeError at the end of a dataset keeps its traceback.

_FILE_ERRNOS = {
    "ResourceExhaustedError": ("ENOSPC", "EDQUOT"),
    "OutOfRangeError": ("EFBIG",),
    "PermissionDeniedError": ("EACCES", "EPERM", "EROFS"),
    "NotFoundError": ("ENOENT",),
    "FailedPreconditionError": ("EISDIR", "ENOTDIR"),
}
_ALL_FILE_ERRNOS = tuple(dict.fromkeys(e for names in _FILE_ERRNOS.values() for e in names))


def _reasons(names):
    return [os.strerror(getattr(errno, name)) for name in names if hasattr(errno, name)]


def os_error_message(err):
    """One line for an OSError: the path and the reason."""
    paths = " -> ".join(repr(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err)
    return f"{paths}: {reason}" if paths else reason


def _tensorflow_file_fault(err):
    """(path or None, reason) of a TensorFlow error that is a file-system fault, else None.
    TensorFlow is in the process whenever such an error can be raised (only then is it read)."""
    tf = sys.modules.get("tensorflow")
    converter = sys.modules.get("tensorflow.lite.python.convert_phase")
    if tf is not None and isinstance(err, tf.errors.OpError):
        reasons = _reasons(_FILE_ERRNOS.get(type(err).__name__, ()))
        text = err.message or ""
    elif converter is not None and isinstance(err, converter.ConverterError):
        reasons = _reasons(_ALL_FILE_ERRNOS)
        text = str(err)
    else:
        return None
    for reason in reasons:
        found = re.search(r"(\S*); " + re.escape(reason), text) or re.search(re.escape(reason),
                                                                             text)
        if found:
            path = found.group(1).strip("'\":,") if found.groups() else ""
            return (path if "/" in path or "\\" in path else None), reason
    return None


def file_fault_message(err, directory=None):
    """One line for a file-system fault, "'<path>': <reason>" (the reason in the platform's
    words: No space left on device, File too large, Read-only file system, Permission denied);
    "a file under '<directory>': <reason>" when TensorFlow did not say which file. None when
    ``err`` is not a file-system fault (it keeps its traceback). Every OSError counts; a
    TensorFlow error when its class and its errno's words say so, also as an exception's
    ``__cause__``."""
    while err is not None:
        if isinstance(err, OSError):
            return os_error_message(err)
        fault = _tensorflow_file_fault(err)
        if fault is not None:
            path, reason = fault
            if path is not None:
                return f"{path!r}: {reason}"
            where = f"a file under {directory!r}" if directory else "a file"
            return f"{where}: {reason}"
        err = err.__cause__
    return None
