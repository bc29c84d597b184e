"""errors.file_fault_message: Python's and TensorFlow's file-system faults in one wording; other
errors (an out-of-memory ResourceExhaustedError, the end of a dataset) are not faults."""

import errno
import os

import pytest

from tfprune.errors import file_fault_message
from tfprune.keras import tf

CKPT = "/run/backup/chkpt_temp/part-00000-of-00001.data-00000-of-00001.tempstate123"

# Messages as TensorFlow 2.21 words them (captured from real failures, see the cases' notes):
# "<context>; <strerror>", the context ending in the path.
TF_FAULTS = [
    # RLIMIT_FSIZE during BackupAndRestore's checkpoint (SaveV2 in a tf.function).
    (tf.errors.OutOfRangeError,
     "{{function_node __wrapped__SaveV2_dtypes_19_device_/job:localhost/replica:0/task:0/"
     f"device:CPU:0}}}} {CKPT}; File too large [Op:SaveV2]",
     f"{CKPT!r}: File too large"),
    # A full disk: ENOSPC is RESOURCE_EXHAUSTED.
    (tf.errors.ResourceExhaustedError, f"{CKPT}; No space left on device [Op:SaveV2]",
     f"{CKPT!r}: No space left on device"),
    (tf.errors.ResourceExhaustedError, "/run/tensorboard/train/events.out.tfevents.1.host; "
     "Disk quota exceeded", "'/run/tensorboard/train/events.out.tfevents.1.host': Disk quota "
     "exceeded"),
    # EROFS and EACCES are PERMISSION_DENIED; gfile's makedirs puts text before the path.
    (tf.errors.PermissionDeniedError, "/ro/run/backup; Read-only file system",
     "'/ro/run/backup': Read-only file system"),
    (tf.errors.PermissionDeniedError, "Failed to create a directory: /locked/run/saved_model; "
     "Permission denied", "'/locked/run/saved_model': Permission denied"),
    # No path in the message: the run directory is named instead.
    (tf.errors.OutOfRangeError, "Failed to flush the event file; File too large",
     "a file under '/run': File too large"),
]


@pytest.mark.parametrize("cls, message, expected", TF_FAULTS)
def test_tensorflow_file_faults_are_one_line_with_path_and_reason(cls, message, expected):
    err = cls(None, None, message)
    assert file_fault_message(err, directory="/run") == expected


def test_the_reasons_are_the_platforms_words():
    assert [os.strerror(e) for e in (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES)] == [
        "No space left on device", "File too large", "Read-only file system", "Permission denied"]


def test_a_fault_raised_from_another_error_is_still_one():
    try:
        try:
            raise tf.errors.OutOfRangeError(None, None, f"{CKPT}; File too large")
        except tf.errors.OpError as err:
            raise RuntimeError("saving failed") from err
    except RuntimeError as err:
        assert file_fault_message(err) == f"{CKPT!r}: File too large"


def test_python_oserrors_keep_their_wording():
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/run/metrics.json")
    assert file_fault_message(err) == "'/run/metrics.json': No space left on device"
    assert file_fault_message(FileExistsError(errno.EEXIST, "File exists", "/a", None, "/b")) \
        == "'/a' -> '/b': File exists"


NOT_FAULTS = [
    # Out of memory is RESOURCE_EXHAUSTED too, and the end of a dataset OUT_OF_RANGE.
    tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape"
                                     "[1000000000,8,8,32] and type float"),
    tf.errors.OutOfRangeError(None, None, "End of sequence"),
    # The right words under the wrong code are not a file fault (no errno maps so).
    tf.errors.InvalidArgumentError(None, None, "/x; File too large"),
    tf.errors.UnavailableError(None, None, "Socket closed"),
    ValueError("File too large"),
    RuntimeError("boom"),
]


@pytest.mark.parametrize("err", NOT_FAULTS, ids=lambda e: type(e).__name__)
def test_other_errors_are_not_file_faults(err):
    assert file_fault_message(err, directory="/run") is None
