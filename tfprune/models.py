"""Model zoo: a registry of builders that fit any registered dataset's input shape and classes.

Every model ends in a Dense classifier followed by a float32 softmax Activation, so mixed
precision keeps a float32 output and pruning can find "the last classifier layer" by type.
"""

import dataclasses

from tfprune.errors import TfpruneError
from tfprune.lazy import keras
from tfprune.registry import Registry


MODELS = Registry("model")
CHECK_INPUTS = 256  # test images an imported (translated) model is checked on
# Models with no spatial structure: shift/crop augmentation only blurs what they see.
FULLY_CONNECTED_MODELS = frozenset({"mlp"})
# Models that take token ids (text data: int32 (sequence_length,), ``vocabulary_size`` ids).
# Every other model of the zoo takes images.
TEXT_MODELS = frozenset({"text_encoder", "bert_base"})


def check_model_data(name, kind, dataset):
    """A TfpruneError unless zoo model ``name`` takes the ``kind`` of data ('image' or 'text')
    data set ``dataset`` holds."""
    takes = "text" if name in TEXT_MODELS else "image"
    if kind == takes:
        return
    data = f"dataset {dataset!r}" if dataset else "the data"
    text_models = ", ".join(sorted(TEXT_MODELS))
    if kind == "text":
        raise TfpruneError(
            f"model {name!r} takes images, and {data} is text (token ids): the zoo's image "
            f"models need image data; choose a text model ({text_models}), or pass a Keras "
            "model of your own that takes token ids with --baseline=PATH")
    raise TfpruneError(f"model {name!r} takes token ids (text), and {data} holds "
                       "images: choose a text data set (fortunes, tsv:PATH, glue:DIR) or an "
                       "image model")


def build_model(name, input_shape, num_classes, seed=None, dataset=None, vocabulary_size=None,
                **options):
    """Build registered model ``name`` for inputs of ``input_shape`` (images: (height, width,
    channels); token ids: (sequence_length,)) and ``num_classes`` classes. A text model
    (``TEXT_MODELS``) also needs ``vocabulary_size``, the range of its token ids (a text data
    set's ``Data.vocabulary_size``); image models take None. ``options`` go to the builder
    (e.g. a transformer's ``width=``, ``blocks=``)."""
    builder = MODELS.get(name)
    input_shape = tuple(int(d) for d in input_shape)
    text = name in TEXT_MODELS
    check_model_data(name, "text" if len(input_shape) == 1 else "image", dataset)
    if text and (len(input_shape) != 1 or input_shape[0] < 1):
        raise TfpruneError(f"`input_shape` of text model {name!r} must be (sequence_length,), "
                           f"got {input_shape}")
    if not text and (len(input_shape) != 3 or min(input_shape) < 1):
        raise TfpruneError(f"`input_shape` must be (height, width, channels), got {input_shape}")
    if int(num_classes) < 2:
        raise TfpruneError(f"`num_classes` must be >= 2, got {num_classes}")
    if text:
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) \
                or vocabulary_size < 2:
            raise TfpruneError(f"text model {name!r} needs `vocabulary_size`, an int >= 2 (the "
                               "range of its token ids: the data's tokenizer gives it), got "
                               f"{vocabulary_size!r}")
        options["vocabulary_size"] = vocabulary_size
    elif vocabulary_size is not None:
        raise TfpruneError(f"`vocabulary_size` applies to the text models "
                           f"({', '.join(sorted(TEXT_MODELS))}), not to image model {name!r}; "
                           f"got {vocabulary_size!r}")
    _check_options(name, builder, options)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return builder(input_shape, int(num_classes), **options)


def _check_options(name, builder, options):
    import inspect

    accepted = [p for p in list(inspect.signature(builder).parameters)[2:]]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(p for p in accepted if p != "vocabulary_size") or "none"
        raise TfpruneError(f"model {name!r} has no option {', '.join(map(repr, unknown))}; its "
                           f"options: {allowed}")


def _classifier(x, num_classes):
    x = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)


@MODELS.register("mlp")
def mlp(input_shape, num_classes, hidden=(300, 100)):
    """LeNet-300-100: Input -> FC -> ReLU -> FC -> ReLU -> out."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden, 1):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="mlp")


@MODELS.register("cnn")
def cnn(input_shape, num_classes):
    """Conv32 -> ReLU -> Pool -> Conv64 -> ReLU -> Pool -> FC128 -> out (the seed CNN)."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, padding="same", name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="fc1")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="cnn")


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@MODELS.register("vgg16")
def vgg16(input_shape, num_classes):
    """CIFAR-style VGG-16 with BatchNorm (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

    13 conv3x3-BN-ReLU layers, 5 max-pools ('same' padding, so 8x8 inputs stay valid), then
    FC512-BN-ReLU and the classifier: 15.0M parameters for CIFAR-10.
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    conv, pool = 0, 0
    for item in _VGG16:
        if item == "M":
            pool += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{pool}")(x)
            continue
        conv += 1
        x = keras.layers.Conv2D(item, 3, padding="same", use_bias=False, name=f"conv{conv}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{conv}")(x)
        x = keras.layers.ReLU(name=f"relu{conv}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(512, use_bias=False, name="fc1")(x)
    x = keras.layers.BatchNormalization(name="fc1_bn")(x)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="vgg16")


def _resnet_cifar(input_shape, num_classes, blocks_per_stage, name):
    """He et al. 2016 CIFAR ResNet (6n+2 layers): 3 stages of n basic blocks, 16/32/64 filters.

    Shortcuts that change shape are 1x1 conv + BN projections (option B), which adds 0.01M
    parameters to the paper's option-A counts (0.27M for ResNet-20, 0.66M for ResNet-44).
    """
    def conv_bn(x, filters, kernel, strides, label):
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"{label}_conv")(x)
        return keras.layers.BatchNormalization(name=f"{label}_bn")(x)

    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.ReLU(name="stem_relu")(conv_bn(inputs, 16, 3, 1, "stem"))
    for stage, filters in enumerate((16, 32, 64), 1):
        for block in range(1, blocks_per_stage + 1):
            label = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            y = keras.layers.ReLU(name=f"{label}_relu1")(
                conv_bn(x, filters, 3, strides, f"{label}_1"))
            y = conv_bn(y, filters, 3, 1, f"{label}_2")
            shortcut = x
            if strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(x, filters, 1, strides, f"{label}_shortcut")
            x = keras.layers.Add(name=f"{label}_add")([y, shortcut])
            x = keras.layers.ReLU(name=f"{label}_relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name=name)


@MODELS.register("resnet20")
def resnet20(input_shape, num_classes):
    return _resnet_cifar(input_shape, num_classes, 3, "resnet20")


@MODELS.register("resnet44")
def resnet44(input_shape, num_classes):
    return _resnet_cifar(input_shape, num_classes, 7, "resnet44")


@MODELS.register("mobilenetv2")
def mobilenetv2(input_shape, num_classes, alpha=1.0, min_size=32):
    """keras.applications MobileNetV2 (weights=None) as one flat functional model.

    Inputs smaller than 32x32 (the application's minimum) are resized up inside the model. The
    application's own top is replaced by the shared float32-softmax classifier.
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    height, width, channels = input_shape
    if min(height, width) < min_size:
        x = keras.layers.Resizing(max(height, min_size), max(width, min_size), name="resize")(x)
    base = keras.applications.MobileNetV2(
        input_tensor=x, include_top=False, weights=None, alpha=alpha, pooling="avg")
    return keras.Model(inputs, _classifier(base.output, num_classes), name="mobilenetv2")



# -- transformers ------------------------------------------------------------------------------
#
# Pre-LayerNorm encoder blocks (ViT; BERT's shape with the norms moved before each part):
#   x = x + Dropout(MHA(LN(x), LN(x)));  x = x + Dropout(Dense(width)(Dense(mlp, gelu)(LN(x))))
# built from tf_keras's own layers (MultiHeadAttention and Dense on (batch, tokens, width)
# tensors) plus tfprune.layers.PositionEmbedding: no Lambda, no custom block layer, so the graph
# is a plain functional model the translation, the converter and the pruning tools read.
# Layer names: block{i}_norm1, block{i}_attention, block{i}_dropout1, block{i}_add1,
# block{i}_norm2, block{i}_mlp1, block{i}_mlp2, block{i}_dropout2, block{i}_add2; then norm, pool.

LAYER_NORM_EPSILON = 1e-6  # ViT's (BERT: 1e-12); tf_keras's default 1e-3 is coarse for width 768


def _check_transformer(name, width, heads, key_dim, blocks, mlp, dropout):
    for argument, value in (("width", width), ("heads", heads), ("key_dim", key_dim),
                            ("blocks", blocks), ("mlp", mlp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TfpruneError(f"model {name!r}: `{argument}` must be an int >= 1, got {value!r}")
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) \
            or not 0.0 <= dropout < 1.0:
        raise TfpruneError(f"model {name!r}: `dropout` must be in [0, 1), got {dropout!r}")


def _encoder(x, width, heads, key_dim, blocks, mlp, dropout):
    """``blocks`` pre-LayerNorm transformer blocks on (batch, tokens, width) ``x``, then the
    final LayerNormalization and mean pooling over the tokens."""
    layers = keras.layers
    for i in range(1, blocks + 1):
        y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"block{i}_norm1")(x)
        y = layers.MultiHeadAttention(heads, key_dim, name=f"block{i}_attention")(y, y)
        if dropout:
            y = layers.Dropout(dropout, name=f"block{i}_dropout1")(y)
        x = layers.Add(name=f"block{i}_add1")([x, y])
        y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"block{i}_norm2")(x)
        y = layers.Dense(mlp, activation="gelu", name=f"block{i}_mlp1")(y)
        y = layers.Dense(width, name=f"block{i}_mlp2")(y)
        if dropout:
            y = layers.Dropout(dropout, name=f"block{i}_dropout2")(y)
        x = layers.Add(name=f"block{i}_add2")([x, y])
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm")(x)
    return layers.GlobalAveragePooling1D(name="pool")(x)


def _vision_transformer(input_shape, num_classes, name, patch_size, width, heads, key_dim,
                        blocks, mlp, dropout):
    """ViT (Dosovitskiy et al. 2021) with mean pooling in place of the class token: a
    ``patch_size`` x ``patch_size`` Conv2D with as many strides embeds each patch, the patches
    become tokens, a learned position embedding is added, then the encoder and the classifier.

    An image whose height or width is not a multiple of ``patch_size`` is zero-padded inside the
    model (ZeroPadding2D ``pad``, split evenly, the odd pixel at the bottom / right) to the next
    multiple: no pixel is dropped or resampled, and the border patches see zeros.
    """
    from tfprune.layers import PositionEmbedding

    _check_transformer(name, width, heads, key_dim, blocks, mlp, dropout)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise TfpruneError(f"model {name!r}: `patch_size` must be an int >= 1, got "
                           f"{patch_size!r}")
    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    height, width_px, _ = input_shape
    pad_h, pad_w = (-height) % patch_size, (-width_px) % patch_size
    x = inputs
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2),
                                  (pad_w // 2, pad_w - pad_w // 2)), name="pad")(x)
    x = layers.Conv2D(width, patch_size, strides=patch_size, name="patch_embedding")(x)
    tokens = ((height + pad_h) // patch_size) * ((width_px + pad_w) // patch_size)
    x = layers.Reshape((tokens, width), name="tokens")(x)
    x = PositionEmbedding(tokens, name="position_embedding")(x)
    x = _encoder(x, width, heads, key_dim, blocks, mlp, dropout)
    return keras.Model(inputs, _classifier(x, num_classes), name=name)


@MODELS.register("vit")
def vit(input_shape, num_classes, patch_size=4, width=64, heads=4, key_dim=16, blocks=4,
        mlp=128, dropout=0.0):
    """A small ViT for 28x28 and 32x32 images: 4x4 patches (49 or 64 tokens), width 64, 4 heads
    of 16, 4 blocks, MLP 128: 0.14M parameters on Fashion-MNIST."""
    return _vision_transformer(input_shape, num_classes, "vit", patch_size, width, heads,
                               key_dim, blocks, mlp, dropout)


@MODELS.register("vit_base")
def vit_base(input_shape, num_classes, patch_size=16, width=768, heads=12, key_dim=64,
             blocks=12, mlp=3072, dropout=0.0):
    """ViT-B/16's shape (12 blocks, width 768, 12 heads of 64, MLP 3072, 16x16 patches) for
    users with a GPU; 85.1M parameters in its blocks."""
    return _vision_transformer(input_shape, num_classes, "vit_base", patch_size, width, heads,
                               key_dim, blocks, mlp, dropout)


def _text_transformer(input_shape, num_classes, name, vocabulary_size, width, heads, key_dim,
                      blocks, mlp, dropout):
    """A BERT-style encoder classifier: int32 token ids (sequence_length,), an Embedding of
    ``vocabulary_size`` ids, a learned position embedding, the encoder, mean pooling.

    No Keras masking: the padding id 0 is an ordinary token with its own learned embedding, so
    pads are attended to and pooled with the words (the mean is over all sequence_length
    positions). The graph stays a plain functional model with no implicit mask tensors, and the
    .tflite computes what Keras does.
    """
    from tfprune.layers import PositionEmbedding

    _check_transformer(name, width, heads, key_dim, blocks, mlp, dropout)
    (sequence_length,) = input_shape
    inputs = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary_size, width, name="token_embedding")(inputs)
    x = PositionEmbedding(sequence_length, name="position_embedding")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    x = _encoder(x, width, heads, key_dim, blocks, mlp, dropout)
    return keras.Model(inputs, _classifier(x, num_classes), name=name)


@MODELS.register("text_encoder")
def text_encoder(input_shape, num_classes, vocabulary_size, width=64, heads=4, key_dim=16,
                 blocks=2, mlp=128, dropout=0.1):
    """A small BERT-style text classifier: width 64, 4 heads of 16, 2 blocks, MLP 128."""
    return _text_transformer(input_shape, num_classes, "text_encoder", vocabulary_size, width,
                             heads, key_dim, blocks, mlp, dropout)


@MODELS.register("bert_base")
def bert_base(input_shape, num_classes, vocabulary_size, width=768, heads=12, key_dim=64,
              blocks=12, mlp=3072, dropout=0.1):
    """BERT-base's shape (12 blocks, width 768, 12 heads of 64, MLP 3072; pre-LayerNorm) for
    users with a GPU: 85,054,464 parameters in its blocks, the embeddings apart."""
    return _text_transformer(input_shape, num_classes, "bert_base", vocabulary_size, width,
                             heads, key_dim, blocks, mlp, dropout)


def load_model(path, argument="model_path", custom_objects=None):
    """A saved tf_keras model (.keras or .h5), uncompiled; a clear TfpruneError otherwise."""
    import os

    from tfprune import layers  # noqa: F401  (registers tfprune's own layers for loading)
    from tfprune.keras import check_model

    _check_model_file(path, argument)
    try:
        model = keras.models.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as err:  # noqa: BLE001  (Keras raises many kinds for a bad file)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfpruneError(f"cannot load Keras model {os.fspath(path)!r} (`{argument}`): "
                           f"{type(err).__name__}: {first}") from None
    return check_model(model, argument)


def _check_model_file(path, argument):
    import os

    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise TfpruneError(f"`{argument}` must be a saved Keras model file (.keras or .h5), got "
                           f"{path!r}, which is not a file")


@dataclasses.dataclass
class Imported:
    """A user's model file, loaded as a tf_keras model; ``translation`` when it was saved by
    Keras 3 (then ``keras3`` says what its translation was checked on)."""

    model: object
    path: str
    translation: object = None  # keras3.Translation

    @property
    def keras3(self):
        return self.translation is not None

    def describe(self):
        """One line on how the file became a tf_keras model."""
        if self.translation is None:
            return f"{self.path}: a tf_keras model"
        t = self.translation
        kind = "random" if t.synthetic_inputs else "real"
        return (f"{self.path}: a Keras 3 model, translated to tf_keras ({t.layers} layers; "
                f"outputs differ by at most {t.max_abs_diff:.2g} on {t.check_inputs} {kind} "
                "inputs)")


def import_model(path, argument="model_path", inputs=None):
    """A user's saved model as tf_keras: a tf_keras file loaded, a Keras 3 ``.keras`` file
    translated (``keras3.from_keras3``) with its outputs checked on ``inputs``."""
    from tfprune import keras3

    _check_model_file(path, argument)
    if not keras3.is_keras3_file(path):
        return Imported(load_model(path, argument), path)
    translation = keras3.from_keras3(keras3.load(path, argument), inputs,
                                     name=f"`{argument}` {path!r}")
    return Imported(translation.model, path, translation)


def import_checked(path, argument, data, log=None):
    """``import_model`` for a job: the translation checked on ``CHECK_INPUTS`` test images of
    ``data``, said in ``log``, and the model checked to fit the data set."""
    imported = import_model(path, argument, inputs=data.numpy("test", limit=CHECK_INPUTS)[0])
    if imported.keras3 and log is not None:
        log(f"{argument} {imported.describe()}")
    check_fits(imported.model, data.input_shape, data.num_classes, f"{argument} {path!r}",
               data.name)
    return imported


def check_fits(model, input_shape, num_classes, name, dataset):
    """A TfpruneError unless ``model`` takes ``input_shape`` and predicts ``num_classes``."""
    got = tuple(model.input_shape[1:])
    if got != tuple(input_shape) or model.output_shape[-1] != num_classes:
        raise TfpruneError(
            f"{name} takes {got} and predicts {model.output_shape[-1]} classes; "
            f"dataset {dataset!r} needs {tuple(input_shape)} and {num_classes} classes")
    return model
