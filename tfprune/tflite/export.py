"""TFLite conversion: float32, float16, dynamic-range int8, full-integer int8; sparse encoding;
int4 and mixed int4/int8 weights (made by ai-edge-quantizer from the float32 .tflite: mixed.py).

A pruned model's .tflite is as large as the dense one: only gzip, the converter's
EXPERIMENTAL_SPARSITY encoding, or physically removing units (surgery.shrink) makes it smaller.
"""

import contextlib
import dataclasses
import os
import sys
import tempfile
import warnings

import numpy as np

from tfprune import io
from tfprune.errors import TfpruneError
from tfprune.keras import check_model, tf
from tfprune.pruning.unit import is_wrapped
from tfprune.tflite import mixed as mixed_lib
from tfprune.tflite.quantizations import QUANTIZATIONS
from tfprune.tflite.traced import Traced

@dataclasses.dataclass(frozen=True)
class Quantization:
    """How a quantization is made. ``configure(converter, representative)`` sets up the TFLite
    converter; ``rewrite(float32, layer_names, mixed, validation) -> (bytes, info)`` instead
    quantizes the float32 .tflite (ai-edge-quantizer: the converter has no int4), so callers that
    already hold the float32 bytes never convert twice. ``check(float32, layer_names, mixed)``:
    the cheap checks a rewrite can make before any work (a mixed budget below all-int4)."""

    configure: object = None
    rewrite: object = None
    check: object = None
    needs_validation: bool = False  # a validation sample (x, y) ranks the layers

    @property
    def rewrites(self):
        return self.rewrite is not None


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

    # Token ids (an integer sample, check_representative: a model taking integers) stay int32
    # inputs, as the model takes them; images are calibrated as float32 and become int8 inputs.
    tokens = np.issubdtype(np.asarray(representative).dtype, np.integer)

    def generator():
        for example in representative:
            yield [example[None].astype(np.int32 if tokens else np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = generator
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not tokens:
        converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def _int4(float32, layer_names, mixed, validation):
    del mixed, validation
    return mixed_lib.all_int4(float32, layer_names=layer_names)


def _mixed(float32, layer_names, mixed, validation):
    return mixed_lib.mixed(float32, mixed, *validation, layer_names=layer_names)


def _check_mixed(float32, layer_names, mixed):
    mixed_lib.extremes(float32, mixed or mixed_lib.MixedSpec(), layer_names=layer_names)


# The entries of QUANTIZATIONS (tflite/quantizations.py names them and loads these on first use).
FLOAT32 = Quantization(_float32)
FLOAT16 = Quantization(_float16)
DYNAMIC = Quantization(_dynamic)
INT8 = Quantization(_int8)
INT4 = Quantization(rewrite=_int4)
MIXED = Quantization(rewrite=_mixed, check=_check_mixed, needs_validation=True)


def check_rewrite(quantization, sparse=False, mixed=None, validation=None):
    """What an ai-edge-quantizer quantization needs, checked before any conversion."""
    spec = QUANTIZATIONS.get(quantization)
    if not spec.rewrites:
        return spec
    if sparse:
        raise TfpruneError(
            f"`sparse` must be False for quantization {quantization!r}, got True: its weights "
            "are quantized by ai-edge-quantizer after conversion, and EXPERIMENTAL_SPARSITY is an "
            "encoding of the converter's own quantizations")
    if mixed is not None and not isinstance(mixed, mixed_lib.MixedSpec):
        raise TfpruneError(f"`mixed` must be a tfprune.tflite.mixed.MixedSpec, got {mixed!r}")
    if spec.needs_validation and validation is None:
        raise TfpruneError(
            f"quantization {quantization!r} needs `validation`: (x, y), a validation sample "
            "(not the test split) on which each layer's int4 cost is measured")
    if validation is not None:
        if len(validation) != 2:
            raise TfpruneError(f"`validation` must be a pair (x, y), got {len(validation)} items")
        mixed_lib.check_sample(*validation)
    return spec


def from_float32(quantization, float32, model, mixed=None, validation=None):
    """(bytes, info) of ``quantization`` made from ``model``'s float32 .tflite bytes: int4 or
    mixed (``info``: int4_layers, int8_layers, int4_fraction, ...); converter quantizations are
    not made this way."""
    spec = check_rewrite(quantization, mixed=mixed, validation=validation)
    if not spec.rewrites:
        raise TfpruneError(f"quantization {quantization!r} is made by the converter "
                           "(to_tflite), not from the float32 .tflite")
    return spec.rewrite(float32, mixed_lib.keras_layers(model), mixed, validation)


def check_float32(quantization, float32, model, mixed=None):
    """The cheap checks of ``quantization`` on the float32 bytes (a mixed budget below the
    all-int4 size), to run before anything is written."""
    spec = QUANTIZATIONS.get(quantization)
    if spec.check is not None:
        spec.check(float32, mixed_lib.keras_layers(model), mixed)


def _input_dtype(model):
    dtype = getattr(model.inputs[0], "dtype", "float32") if getattr(model, "inputs", None) \
        else "float32"
    return getattr(dtype, "as_numpy_dtype", dtype)


def check_representative(model, representative_data):
    """The sample as an array shaped (N,) + the model's input shape: float32, or int32 for a
    model that takes integers (token ids)."""
    if representative_data is None:
        return None
    integer = np.issubdtype(np.dtype(_input_dtype(model)), np.integer)
    sample = np.asarray(representative_data, dtype=np.int32 if integer else np.float32)
    expected = tuple(model.input_shape[1:])
    if sample.ndim != len(expected) + 1 or tuple(sample.shape[1:]) != expected or len(sample) < 1:
        raise TfpruneError(
            f"`representative_data` must have shape (N,) + {expected} to match the model input, "
            f"got {tuple(sample.shape)}")
    if not np.isfinite(sample).all():
        raise TfpruneError("`representative_data` contains NaN or infinite values")
    return sample


def to_tflite(model, quantization="float32", representative_data=None, sparse=False, mixed=None,
              validation=None, traced=None):
    """Convert a Keras model to .tflite bytes.

    ``representative_data``: inputs (N, *input_shape) for int8 calibration.
    ``sparse``: add the converter's EXPERIMENTAL_SPARSITY encoding (helps pruned weights; not
    for int4 and mixed, which are an error with it).
    ``mixed``: a ``mixed.MixedSpec`` (default: half the weights int4); ``validation``: (x, y),
    a validation sample, required by "mixed" to rank the layers.
    ``traced``: a ``traced.Traced`` of ``model`` (entered) when several conversions of it share
    one trace; the bytes are the same either way.
    """
    check_model(model, graph=False)
    spec = check_rewrite(quantization, sparse, mixed, validation)
    if is_wrapped(model):
        raise TfpruneError("`model` still has pruning wrappers; strip them first "
                           "(tfprune.pruning.strip) so the .tflite holds plain layers")
    representative = check_representative(model, representative_data)
    if spec.rewrites:
        float32 = to_tflite(model, "float32", traced=traced)
        return from_float32(quantization, float32, model, mixed, validation)[0]
    if traced is None:
        with Traced(model) as traced:
            return _convert(traced, spec, representative, sparse)
    if traced.model is not model:
        raise TfpruneError("`traced` is a trace of another model than `model`")
    return _convert(traced, spec, representative, sparse)


def _convert(traced, spec, representative, sparse):
    converter = traced.converter()
    spec.configure(converter, representative)
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


def export(model, path, quantization="float32", representative_data=None, sparse=False,
           mixed=None, validation=None):
    """Convert and write atomically; nothing is left behind if conversion fails."""
    return save_tflite(to_tflite(model, quantization, representative_data, sparse, mixed,
                                 validation), path)
