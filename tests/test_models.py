import numpy as np
import pytest

from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.keras import keras
from tfprune.models import MODELS, TEXT_MODELS, build_model

IMAGE_MODELS = [name for name in MODELS.names() if name not in TEXT_MODELS]


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name", IMAGE_MODELS)  # the text models: test_models_transformers.py
@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
def test_every_image_model_builds_and_runs(name, shape):
    model = build_model(name, shape, 10, seed=0)
    assert isinstance(model, keras.Model)
    out = model(np.random.default_rng(0).random((2,) + shape, dtype=np.float32), training=False)
    assert out.shape == (2, 10) and out.dtype.name == "float32"
    np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)
    assert model.layers[-2].name == "classifier"


@pytest.mark.parametrize("name, published, tolerance", [
    ("resnet20", 0.27e6, 0.02),   # He et al. 2016, Table 6
    ("resnet44", 0.66e6, 0.02),
    ("vgg16", 15.0e6, 0.01),      # Li et al. 2017, VGG-16 on CIFAR-10: 1.5e7
])
def test_parameter_counts_match_published(name, published, tolerance):
    model = build_model(name, (32, 32, 3), 10)
    assert abs(trainable(model) - published) / published < tolerance, trainable(model)


def test_small_model_counts():
    assert build_model("cnn", (8, 8, 1), 10).count_params() == 53002
    assert build_model("mlp", (8, 8, 1), 10).count_params() == 64 * 300 + 300 + 300 * 100 + 100 + 1010


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="unknown model 'alexnet'; registered: bert_base, cnn, mlp, mobilenetv2, resnet20, resnet44, text_encoder, vgg16, vit, vit_base"):
        build_model("alexnet", (8, 8, 1), 10)
    with pytest.raises(TfpruneError, match=r"`input_shape` must be \(height, width, channels\)"):
        build_model("cnn", (8, 8), 10)
    with pytest.raises(TfpruneError, match="model 'cnn' takes images, and the data is text"):
        build_model("cnn", (64,), 10)  # token ids
    with pytest.raises(TfpruneError, match="`num_classes` must be >= 2, got 1"):
        build_model("cnn", (8, 8, 1), 1)
