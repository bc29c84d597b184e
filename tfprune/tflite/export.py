"""TFLite conversion: float32, float16, dynamic-range int8, full-integer int8; sparse encoding.

A pruned model's .tflite is as large as the dense one: only gzip, the converter's
EXPERIMENTAL_SPARSITY encoding, or physically removing units (surgery.shrink) makes it smaller.
"""

import contextlib
import os
import sys
import tempfile
import warnings

import numpy as np

from tfprune import io
from tfprune.errors import TfpruneError
from tfprune.keras import check_model, tf
from tfprune.pruning.unit import is_wrapped
from tfprune.registry import Registry

QUANTIZATIONS = Registry("quantization")


def _float32(converter, representative):
    del representative


def _float16(converter, representative):
    del representative
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, representative):
    del representative
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, representative):
    if representative is None:
        raise TfpruneError("`representative_data` is required for int8 quantization "
                           "(a sample of training inputs to calibrate activation ranges)")

    def generator():
        for example in representative:
            yield [example[None].astype(np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = generator
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


QUANTIZATIONS.register("float32", _float32)
QUANTIZATIONS.register("float16", _float16)
QUANTIZATIONS.register("dynamic", _dynamic)
QUANTIZATIONS.register("int8", _int8)


def check_representative(model, representative_data):
    """The sample as a float32 array shaped (N,) + the model's input shape."""
    if representative_data is None:
        return None
    sample = np.asarray(representative_data, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if sample.ndim != len(expected) + 1 or tuple(sample.shape[1:]) != expected or len(sample) < 1:
        raise TfpruneError(
            f"`representative_data` must have shape (N,) + {expected} to match the model input, "
            f"got {tuple(sample.shape)}")
    if not np.isfinite(sample).all():
        raise TfpruneError("`representative_data` contains NaN or infinite values")
    return sample


def to_tflite(model, quantization="float32", representative_data=None, sparse=False):
    """Convert a Keras model to .tflite bytes.

    ``representative_data``: inputs (N, *input_shape) for int8 calibration.
    ``sparse``: add the converter's EXPERIMENTAL_SPARSITY encoding (helps pruned weights).
    """
    check_model(model, graph=False)
    configure = QUANTIZATIONS.get(quantization)
    if is_wrapped(model):
        raise TfpruneError("`model` still has pruning wrappers; strip them first "
                           "(tfprune.pruning.strip) so the .tflite holds plain layers")
    representative = check_representative(model, representative_data)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    configure(converter, representative)
    if sparse:
        converter.optimizations = list(converter.optimizations) + [
            tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    with _quiet_native_stderr(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return converter.convert()


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hold the converter's C++ chatter (printed straight to fd 2 on every int8 conversion);
    replay it if the conversion fails, so nothing needed to debug a failure is lost."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. captured)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def save_tflite(content, path):
    io.write_bytes(path, content)
    return path


def export(model, path, quantization="float32", representative_data=None, sparse=False):
    """Convert and write atomically; nothing is left behind if conversion fails."""
    return save_tflite(to_tflite(model, quantization, representative_data, sparse), path)
