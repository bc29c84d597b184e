"""One trace of a Keras model for all its TFLite conversions.

``tf.lite.TFLiteConverter.from_keras_model(model).convert()`` traces ``model``, saves it as a
SavedModel in a temporary directory and loads it back, on every call: the larger part of a small
model's conversion. A variant is converted eight times (four quantizations, each plain and
sparse-encoded), so a ``Traced`` model saves and loads once and hands every conversion a
converter that starts from that SavedModel. The converter is TensorFlow's own Keras converter
class with only that step replaced, so its output is byte for byte what ``from_keras_model``
makes (tests/test_tflite_traced.py compares every quantization).

The replaced step follows TensorFlow's private code (lite.py, ``_convert_keras_to_saved_model``
after the save); if those internals are missing or the model cannot be saved, every conversion
takes the ordinary ``from_keras_model`` path instead (``shared`` is then False).
"""


from tfprune import io
from tfprune.keras import tf

try:  # TensorFlow internals the shared path needs; without them it is simply not used
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as _metadata
    from tensorflow.lite.python import lite as _lite
    from tensorflow.python.saved_model import load as _load
    from tensorflow.python.saved_model import save as _save
    from tensorflow.python.saved_model import save_options as _save_options
    from tensorflow.python.saved_model import signature_constants as _signatures
    from tensorflow.python.saved_model import tag_constants as _tags
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    _lite = None


def _converter_class():
    if _lite is None or not hasattr(_lite, "TFLiteKerasModelConverterV2"):
        return None

    class SharedKerasConverter(_lite.TFLiteKerasModelConverterV2):
        """TensorFlow's Keras converter, starting from a SavedModel already written and
        loaded (``traced``) instead of saving the model again."""

        def __init__(self, model, traced):
            super().__init__(model)
            self._traced = traced

        def _convert_keras_to_saved_model(self, output_dir):
            del output_dir  # the converter's own temporary directory stays empty
            self.saved_model_dir = self._traced.directory
            self._saved_model_tags = {_tags.SERVING}
            self._saved_model_exported_names = [_signatures.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
            self._parse_saved_model_args(
                always_enable_saved_model_import=self.experimental_lower_to_saved_model)
            if not self.saved_model_dir:
                return None, None, None
            graph, trackable = self._traced.loaded(self)
            self._trackable_obj = trackable
            return graph

    return SharedKerasConverter


class Traced:
    """A context manager: ``converter()`` gives a fresh, unconfigured TFLite converter of
    ``model``; all of them share one SavedModel of it (written for the first, removed on
    exit)."""

    def __init__(self, model):
        self.model = model
        self.directory = None
        self._class = _converter_class()
        self._loaded = None
        self._tried = False

    @property
    def shared(self):
        """True when the conversions share one SavedModel (known after the first)."""
        return self.directory is not None

    def __enter__(self):
        return self

    def _save(self):
        """Write the SavedModel (on the first conversion); if the model cannot be saved, every
        conversion takes from_keras_model's path, as from_keras_model itself would."""
        self._tried = True
        if self._class is None:
            return
        directory = io.temp_dir("tfprune_trace_")  # removed by a worker that is ending too
        try:  # the same save as from_keras_model's (debug info on)
            _save.save(self.model, directory,
                       options=_save_options.SaveOptions(save_debug_info=True))
            self.directory = directory
        except Exception:  # noqa: BLE001 - from_keras_model falls back the same way
            io.remove_temp(directory)

    def __exit__(self, *exc):
        if self.directory:
            io.remove_temp(self.directory)
        self.directory, self._loaded, self._tried = None, None, False
        return False

    def loaded(self, converter):
        """((graph_def, inputs, outputs), trackable) of the SavedModel, loaded once."""
        if self._loaded is None:
            graph = converter._load_saved_model(self.directory, {_tags.SERVING})
            self._loaded = (graph, _load.load(self.directory, {_tags.SERVING}))
        return self._loaded

    def converter(self):
        if not self._tried:
            self._save()
        if not self.shared:
            return tf.lite.TFLiteConverter.from_keras_model(self.model)
        # What from_keras_model records in the .tflite's conversion metadata.
        _lite.TFLiteConverterBase._set_original_model_type(_metadata.ModelType.KERAS_MODEL)
        return self._class(self.model, self)
