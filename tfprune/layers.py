"""tfprune's own Keras layers (tf_keras): what the zoo needs and the built-in layers lack.

``PositionEmbedding``: a learned position embedding added to a sequence of vectors (the
transformers of the zoo: tokens of a ViT, words of a text encoder). One weight, ``embeddings``
of shape (sequence_length, width); ``call`` returns ``inputs + embeddings[:T]`` for inputs of
T <= sequence_length positions, broadcast over the batch. Registered serializable under the
package "tfprune" (``tfprune>PositionEmbedding``), so a saved .keras or .h5 model with it loads
once this module is imported (``tfprune.models.load_model`` imports it; tf_keras imports it by
itself for a .keras file). Its Keras 3 twin, the same registered name, weight name and config,
is ``tfprune.keras3.PositionEmbedding`` (built there on first use, so this module imports no
Keras 3), and ``keras3.from_keras3`` / ``to_keras3`` translate one into the other. In a
converted .tflite the layer is a constant added to its input: the deployed model needs nothing
of tfprune.
"""

from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf

PACKAGE = "tfprune"  # the package of the registered names: "tfprune>PositionEmbedding"
DEFAULT_INITIALIZER = {"class_name": "TruncatedNormal", "config": {"stddev": 0.02}}  # BERT's


def check_sequence_length(sequence_length, layer="PositionEmbedding"):
    """``sequence_length`` as an int >= 1, or a one-line TfpruneError."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) \
            or sequence_length < 1:
        raise TfpruneError(f"{layer}: `sequence_length` must be an int >= 1 (the positions it "
                           f"holds), got {sequence_length!r}")
    return sequence_length


def check_input_shape(shape, sequence_length, name):
    """The width of inputs of ``shape`` (batch, positions, width) a PositionEmbedding of
    ``sequence_length`` positions takes; a one-line TfpruneError otherwise."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[-1] is None:
        raise TfpruneError(f"PositionEmbedding {name!r} takes (batch, positions, width) inputs "
                           f"with a known width, got shape {shape}")
    if shape[1] is not None and shape[1] > sequence_length:
        raise TfpruneError(f"PositionEmbedding {name!r} holds {sequence_length} positions; its "
                           f"input has {shape[1]}")
    return int(shape[-1])


@keras.utils.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """inputs (batch, T, width) + a learned (sequence_length, width) ``embeddings``[:T]."""

    def __init__(self, sequence_length, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_sequence_length(sequence_length)
        self.initializer = keras.initializers.get(
            DEFAULT_INITIALIZER if initializer is None else initializer)

    def build(self, input_shape):
        width = check_input_shape(input_shape, self.sequence_length, self.name)
        self.embeddings = self.add_weight(name="embeddings",
                                          shape=(self.sequence_length, width),
                                          initializer=self.initializer, trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        positions = inputs.shape[1] if inputs.shape[1] is not None else tf.shape(inputs)[1]
        return inputs + tf.cast(self.embeddings[:positions], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer)}
