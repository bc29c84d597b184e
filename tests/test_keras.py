import pytest

from tfprune.keras import check_model, keras


@pytest.mark.integration
@pytest.mark.parametrize("prelude", [
    "",
    "import tensorflow as tf\n",
    "import tensorflow as tf\ntf.keras.layers\n",  # tf.keras resolved to Keras 3 first
])
def test_import_order_keeps_keras2_for_pruning(python, prelude):
    code = prelude + (
        "import tfprune\n"
        "from tfprune.keras import keras\n"
        "import tensorflow_model_optimization as tfmot\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n"
        "p = tfmot.sparsity.keras.prune_low_magnitude(m)\n"
        "print('OK', type(p).__module__.split('.')[0])\n")
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr
    assert "OK tf_keras" in result.stdout
    if "tf.keras.layers" in prelude:
        assert "tf.keras resolved to Keras 3" in result.stderr


def test_check_model_names_keras3_models():
    import keras as keras3

    model3 = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="Keras 3 model.*work on tf_keras models.*from_keras3"):
        check_model(model3)
    with pytest.raises(TypeError, match="must be a tf_keras Model, got builtins.str"):
        check_model("model.keras")
    model2 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert check_model(model2) is model2
