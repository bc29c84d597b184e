"""errors.file_fault_message: Python's and TensorFlow's file-system faults in one wording; other
errors (an out-of-memory ResourceExhaustedError, the end of a dataset) are not faults."""

import errno
import os

import pytest

from tfprune.errors import file_fault_message
from tfprune.keras import tf

SAVE = ("{{function_node __wrapped__SaveV2_dtypes_2_device_/job:localhost/replica:0/task:0/"
        "device:CPU:0}}")
PART = "/run/backup/chkpt_temp/part-00000-of-00001.data-00000-of-00001.tempstate7511302925457529352"
EVENTS = "/run/tb/events.out.tfevents.1796177831.vm.28102.0.v2"

# Messages TensorFlow 2.21 gave on this machine (tf.train.Checkpoint.write, tf.io.gfile,
# tf.summary.create_file_writer, tf.saved_model.save into a 300 KB tmpfs, a read-only tmpfs,
# under `ulimit -f 200`, and in a 0555 directory with CAP_DAC_OVERRIDE dropped):
# "<context>; <strerror>", the context ending in the path.
TF_FAULTS = [
    (tf.errors.OutOfRangeError, f"{SAVE} {PART}; File too large [Op:SaveV2]",
     f"{PART!r}: File too large"),
    (tf.errors.OutOfRangeError, "/run/f.bin; File too large", "'/run/f.bin': File too large"),
    (tf.errors.ResourceExhaustedError, f"{SAVE} {PART}; No space left on device [Op:SaveV2]",
     f"{PART!r}: No space left on device"),
    (tf.errors.ResourceExhaustedError,
     "{{function_node __wrapped__CreateSummaryFileWriter_device_/job:localhost/replica:0/task:0/"
     f"device:CPU:0}}}} {EVENTS}; No space left on device\n\tFailed to flush 1 events to "
     f"{EVENTS}\n\tFlushing first event.\n\tCould not initialize events writer. "
     "[Op:CreateSummaryFileWriter] name: ", f"{EVENTS!r}: No space left on device"),
    (tf.errors.PermissionDeniedError, f"{SAVE} /run/backup/chkpt_temp; Read-only file system "
     "[Op:SaveV2]", "'/run/backup/chkpt_temp': Read-only file system"),
    (tf.errors.PermissionDeniedError, "/run/saved_model; Read-only file system",
     "'/run/saved_model': Read-only file system"),
    (tf.errors.PermissionDeniedError, "/run/a; Permission denied", "'/run/a': Permission denied"),
    # Not captured: EDQUOT (no quotas here), a message without a path (the run directory named).
    (tf.errors.ResourceExhaustedError, f"{EVENTS}; Disk quota exceeded",
     f"{EVENTS!r}: Disk quota exceeded"),
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
            raise tf.errors.OutOfRangeError(None, None, f"{PART}; File too large")
        except tf.errors.OpError as err:
            raise RuntimeError("saving failed") from err
    except RuntimeError as err:
        assert file_fault_message(err) == f"{PART!r}: File too large"


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


def test_a_converter_error_with_an_errno_is_a_file_fault_and_others_are_not():
    from tensorflow.lite.python.convert_phase import ConverterError

    err = ConverterError("Could not write /tmp/tmpab12/model.tflite; No space left on device")
    assert file_fault_message(err) == "'/tmp/tmpab12/model.tflite': No space left on device"
    assert file_fault_message(ConverterError("'tf.Conv2D' op is neither a custom op nor a "
                                             "flex op")) is None
