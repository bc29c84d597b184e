"""Weight pruning of a subclassed tf_keras model's sublayers (tfprune.pruning.subclassed)."""

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning import prune_sublayers, strip_sublayers, subclassed
from tfprune.tflite import export


class Block(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(8, 3, padding="same", activation="relu")

    def call(self, x):
        return self.conv(x)


class Net(keras.Model):
    """Sublayers in an attribute, in a list, and inside a custom layer."""

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.flat = keras.layers.Flatten()
        self.hidden = [keras.layers.Dense(32, activation="relu"),
                       keras.layers.Dense(16, activation="relu")]
        self.head = keras.layers.Dense(10, activation="softmax", name="head")

    def call(self, x):
        x = self.flat(self.block(x))
        for dense in self.hidden:
            x = dense(x)
        return self.head(x)


def _data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(256, 8, 8, 1)).astype("float32"), rng.integers(0, 10, 256)


@pytest.mark.integration
def test_sublayers_of_a_subclassed_model_are_weight_pruned_in_place():
    x, y = _data()
    keras.utils.set_random_seed(0)
    net = Net()
    net(x[:1])
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(x, y, epochs=1, verbose=0)  # a compiled, trained model: its traced step is reset
    weights = len(net.weights)
    result = prune_sublayers(net, 0.8, "constant", steps_per_epoch=8, epochs=2, exclude=["head"])
    assert len(result.pruned_layers) == 3 and "head" not in result.pruned_layers
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(x, y, epochs=2, verbose=0, callbacks=result.callbacks)
    strip_sublayers(net)
    assert len(net.weights) == weights  # masks and steps gone with the wrappers
    sparsity = subclassed.sublayer_sparsity(net)
    assert sparsity["head"] == 0.0
    for name in result.pruned_layers:
        assert sparsity[name] == pytest.approx(0.8, abs=0.01), name
    assert net.predict(x[:4], verbose=0).shape == (4, 10)
    assert len(export.to_tflite(net, "float32")) > 1000


def test_what_prune_sublayers_refuses():
    with pytest.raises(TfpruneError, match="never been called"):
        prune_sublayers(Net(), 0.5, steps_per_epoch=4, epochs=1)
    functional = build_model("mlp", (8, 8, 1), 10)
    with pytest.raises(TfpruneError, match="functional or Sequential model: prune it with"):
        prune_sublayers(functional, 0.5, steps_per_epoch=4, epochs=1)
    net = Net()
    net(_data()[0][:1])
    with pytest.raises(TfpruneError, match=r"`target_sparsity` must be in \[0, 1\)"):
        prune_sublayers(net, 1.5, steps_per_epoch=4, epochs=1)
    with pytest.raises(TfpruneError, match="no Dense, Conv1D, Conv2D, Embedding, MultiHeadAttention sublayer"):
        prune_sublayers(net, 0.5, steps_per_epoch=4, epochs=1,
                        exclude=list(subclassed.sublayer_sparsity(net)))


class Hidden(keras.Model):
    """A Dense in a private attribute and one inside a Sequential: unreachable for wrappers."""

    def __init__(self):
        super().__init__()
        self._private = keras.layers.Dense(8, name="private_dense")
        self.features = keras.Sequential([keras.layers.Dense(8, name="inner_dense")])
        self.head = keras.layers.Dense(3, name="open_head")

    def call(self, x):
        return self.head(self.features(self._private(x)))


def test_sublayers_it_cannot_reach_are_named_not_silently_left_dense():
    net = Hidden()
    net(np.zeros((1, 4), "float32"))
    with pytest.raises(TfpruneError, match=r"sublayers private_dense\w*, inner_dense\w* of .* "
                                           r"are held where tfprune cannot swap them"):
        prune_sublayers(net, 0.5, steps_per_epoch=4, epochs=1)


class TextNet(keras.Model):
    """An embedding and a self-attention block called with (query, value) positionally."""

    def __init__(self):
        super().__init__()
        self.embed = keras.layers.Embedding(50, 16)
        self.attention = keras.layers.MultiHeadAttention(2, 8)
        self.pool = keras.layers.GlobalAveragePooling1D()
        self.head = keras.layers.Dense(3, name="head")

    def call(self, ids):
        h = self.embed(ids)
        h = h + self.attention(h, h)
        return self.head(self.pool(h))


@pytest.mark.integration
def test_attention_and_embedding_sublayers_are_weight_pruned():
    # the fit loop's training=True must reach a wrapper called with two positional inputs
    rng = np.random.default_rng(0)
    ids, y = rng.integers(0, 50, (64, 10)), rng.integers(0, 3, 64)
    keras.utils.set_random_seed(0)
    net = TextNet()
    net(ids[:1])
    result = prune_sublayers(net, 0.8, "constant", steps_per_epoch=4, epochs=1, exclude=["head"])
    net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(ids, y, batch_size=16, epochs=1, verbose=0, callbacks=result.callbacks)
    strip_sublayers(net)
    kernels = {w.name.split("/", 1)[1]: w.numpy() for w in net.weights
               if w.name.endswith(("kernel:0", "embeddings:0")) and "/head/" not in w.name}
    assert len(kernels) == 5  # the table and q, k, v, output projections
    for name, kernel in kernels.items():
        assert np.mean(kernel == 0) == pytest.approx(0.8, abs=0.01), name
