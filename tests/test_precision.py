import numpy as np
import pytest

from tfprune import precision
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import build_model


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20"])
def test_mixed_copy_keeps_outputs_float32_and_computes_the_same(name):
    model = build_model(name, (8, 8, 1), 10, seed=0)
    copy = precision.mixed_copy(model)
    policies = precision.policies(copy)
    assert policies.pop("softmax") == "float32"  # every zoo model ends in it
    assert set(policies.values()) == {"mixed_float16"}
    assert copy.dtype_policy.name == "mixed_float16"  # compile adds loss scaling
    assert precision.global_policy() == "float32"
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    out = copy(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), atol=1e-2)


def test_float32_copy_is_exact_and_a_float32_model_is_returned_as_it_is():
    model = build_model("cnn", (8, 8, 1), 10, seed=0)
    assert precision.float32_copy(model) is model
    back = precision.float32_copy(precision.mixed_copy(model))
    assert precision.is_float32(back) and back.dtype_policy.name == "float32"
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(back(x).numpy(), model(x).numpy())


def test_sequential_output_layer_stays_float32():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    copy = precision.mixed_copy(model)
    assert [l.dtype_policy.name for l in copy.layers] == ["mixed_float16", "float32"]


def test_subclassed_and_nested_models_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 4), "float32"))
    with pytest.raises(TfpruneError, match="subclassed model"):
        precision.mixed_copy(net)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="inner")
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    with pytest.raises(TfpruneError, match="holds models as layers \\(inner\\)"):
        precision.mixed_copy(outer)


def test_policy_is_restored_after_a_scope_and_a_decorated_job_even_when_it_raises():
    with precision.policy_scope(precision.MIXED):
        assert precision.global_policy() == "mixed_float16"
    assert precision.global_policy() == "float32"

    @precision.restores_policy
    def job():
        precision.set_mixed_precision(True)
        raise RuntimeError("failed midway")

    with pytest.raises(RuntimeError):
        job()
    assert precision.global_policy() == "float32"
