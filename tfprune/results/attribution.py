"""What a model looks at: vanilla-gradient saliency, SmoothGrad, Grad-CAM, class-model images,
and the drift of a pruned model's maps from the dense model's.

Pure functions of a tf_keras model and arrays. Scores are the class logits where the model ends
in a softmax layer (an ``Activation('softmax')`` or a Dense with a softmax activation), so that
maps do not vanish where the softmax saturates; otherwise the model's outputs.
"""

import numpy as np
from scipy.stats import rankdata

from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf

CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
              keras.layers.SeparableConv2D)


def _is_softmax(layer):
    return getattr(getattr(layer, "activation", None), "__name__", "") == "softmax"


def _score_model(model):
    """(a model x -> its last output or the softmax's input, the function from that to class
    scores): the logits where the softmax can be peeled off."""
    last, node_index, _ = model.outputs[0]._keras_history
    if isinstance(last, (keras.layers.Activation, keras.layers.Dense)) and _is_softmax(last):
        # The input of this model's call of the layer (a layer may be shared by other models).
        last_input = last.inbound_nodes[node_index].input_tensors
        head = keras.Model(model.inputs, last_input)
        if isinstance(last, keras.layers.Activation):
            return head, lambda z: z

        def dense_logits(z):
            z = tf.matmul(z, last.kernel)
            return z + last.bias if last.use_bias else z
        return head, dense_logits
    return model, lambda z: z


def _score_fn(model):
    """A function x -> class scores."""
    head, finish = _score_model(model)
    return lambda x: finish(head(x, training=False))


def _classes(model, x, class_index):
    """Per-image class indices: given (int or array) or the model's predictions."""
    if class_index is None:
        return np.argmax(np.asarray(model(x, training=False)), axis=-1)  # eager: no retracing
    return np.broadcast_to(np.asarray(class_index, dtype=np.int64), (len(x),)).copy()


def _gradients(score, x, classes):
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        picked = tf.gather(score(x), classes, axis=1, batch_dims=1)
    return tape.gradient(picked, x).numpy()


def saliency(model, x, class_index=None):
    """Vanilla-gradient saliency (Simonyan et al. 2014): |d score_c / d x|, the largest over
    channels: (N, H, W) for images (N, *input_shape)."""
    x = np.asarray(x, np.float32)
    grads = _gradients(_score_fn(model), x, _classes(model, x, class_index))
    return np.max(np.abs(grads), axis=-1) if grads.ndim == 4 else np.abs(grads)


def smoothgrad(model, x, class_index=None, samples=25, noise=0.15, seed=0):
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over ``samples`` copies of each image
    with Gaussian noise of std ``noise`` x (max - min) of the image, seeded."""
    x = np.asarray(x, np.float32)
    classes = _classes(model, x, class_index)
    score = _score_fn(model)
    rng = np.random.default_rng(seed)
    spread = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)).reshape(
        (-1,) + (1,) * (x.ndim - 1))
    total = 0.0
    for _ in range(samples):
        noisy = x + rng.normal(0.0, 1.0, x.shape).astype(np.float32) * noise * spread
        grads = np.abs(_gradients(score, noisy, classes))
        total = total + (np.max(grads, axis=-1) if grads.ndim == 4 else grads)
    return total / samples


def _walk(model, prefix=""):
    """(path, layer) of every layer, nested models' layers as "outer/inner", depth first."""
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer, path + "/")


def _is_cam_layer(layer):
    return isinstance(layer, CONV_TYPES) and len(layer.output.shape) == 4


def conv_layers(model):
    """Paths of the layers Grad-CAM can use (convolutions with spatial outputs), in order; a
    layer inside a nested model (a ``keras.applications`` backbone) is "backbone/layer"."""
    return [path for path, layer in _walk(model) if _is_cam_layer(layer)]


def _find(model, name):
    """The layer at path ``name``, or the one layer of that name at any depth; None if none."""
    paths = dict(_walk(model))
    if name in paths:
        return paths[name]
    found = [layer for path, layer in paths.items() if path.rsplit("/", 1)[-1] == name]
    return found[0] if len(found) == 1 else None


def check_cam_layer(model, layer=None):
    """The Grad-CAM layer's path: ``layer`` if it names a convolution of ``model`` (at any
    depth), else the last one; a TfpruneError listing the valid layers otherwise."""
    valid = conv_layers(model)
    if layer is None:
        if not valid:
            raise TfpruneError(f"{model.name!r} has no convolution with a spatial output for "
                               "Grad-CAM")
        return valid[-1]
    found = _find(model, layer)
    if found is None or not _is_cam_layer(found):
        what = "does not exist" if found is None else "is not a convolution with a spatial output"
        raise TfpruneError(f"Grad-CAM layer {layer!r} of {model.name!r} {what}; valid layers: "
                           f"{', '.join(valid) or 'none'}")
    return next(path for path, l in _walk(model) if l is found)


def _recording(layer, outputs):
    """Make ``layer`` append what it returns to ``outputs`` until the returned undo is called:
    the feature maps of a layer at any depth, on the tape, without rebuilding the model."""
    original = layer.call

    def call(*args, **kwargs):
        result = original(*args, **kwargs)
        outputs.append(result)
        return result

    object.__setattr__(layer, "call", call)
    return lambda: object.__delattr__(layer, "call")


def grad_cam(model, x, class_index=None, layer=None):
    """Grad-CAM (Selvaraju et al. 2017) on ``layer`` (default: the last convolution, nested
    models included): ReLU of the feature maps weighted by their mean gradient, resized to the
    input, each map scaled to [0, 1]: (N, H, W)."""
    x = np.asarray(x, np.float32)
    target = _find(model, check_cam_layer(model, layer))
    classes = _classes(model, x, class_index)
    score = _score_fn(model)
    recorded = []
    undo = _recording(target, recorded)
    try:
        with tf.GradientTape() as tape:
            picked = tf.gather(score(tf.convert_to_tensor(x)), classes, axis=1, batch_dims=1)
    finally:
        undo()
    features = recorded[-1]  # a layer called more than once: its last call
    grads = tape.gradient(picked, features).numpy()
    features = features.numpy()
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * features).sum(-1), 0.0)
    cam = tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear").numpy()[..., 0]
    peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0)


def class_model(model, class_index, steps=200, learning_rate=0.1, l2=1e-3, blur_every=4,
                blur_sigma=0.5, jitter=1, seed=0):
    """A class-model image (Simonyan et al. 2014): an input optimised by gradient ascent on the
    class score minus ``l2`` x ||x||^2, jittered by up to ``jitter`` pixels and blurred every
    ``blur_every`` steps (0: never), from seeded small noise; (H, W, C). ``class_index`` a
    list: one image per class, optimised together in one batch, (N, H, W, C)."""
    batched = np.ndim(class_index) > 0
    classes = np.atleast_1d(np.asarray(class_index, np.int64))
    shape = tuple(int(d) for d in model.input_shape[1:])
    rng = np.random.default_rng(seed)
    image = tf.Variable(rng.normal(0.0, 0.01, (len(classes),) + shape).astype(np.float32))
    score = _score_fn(model)
    spatial = len(shape) == 3

    @tf.function
    def step(shift, blur):
        with tf.GradientTape() as tape:
            shifted = tf.roll(image, shift, (1, 2)) if spatial else image
            picked = tf.gather(score(shifted), classes, axis=1, batch_dims=1)
            objective = tf.reduce_sum(picked) - l2 * tf.reduce_sum(tf.square(image))
        grad = tape.gradient(objective, image)
        axes = list(range(1, len(shape) + 1))  # each image's step normalised on its own
        grad = grad / (tf.sqrt(tf.reduce_mean(tf.square(grad), axes, keepdims=True)) + 1e-8)
        image.assign_add(learning_rate * grad)
        if spatial and blur:
            image.assign(_blur(image, blur_sigma))

    for i in range(steps):
        shift = rng.integers(-jitter, jitter + 1, 2) if jitter and spatial else np.zeros(2)
        step(tf.constant(shift, tf.int32),
             tf.constant(bool(blur_every) and (i + 1) % blur_every == 0))
    return image.numpy() if batched else image.numpy()[0]


def _blur(image, sigma):
    """A 3x3 Gaussian blur of (N, H, W, C), channel by channel."""
    k = np.exp(-np.arange(-1, 2) ** 2 / (2 * sigma ** 2))
    kernel = np.outer(k, k) / np.outer(k, k).sum()
    channels = int(image.shape[-1])
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1)).astype(np.float32)
    return tf.nn.depthwise_conv2d(image, kernel, [1, 1, 1, 1], "SAME")


def spearman(a, b):
    """Spearman rank correlation of each pair of maps (ties share their mean rank): (N,)."""
    a = rankdata(np.asarray(a).reshape(len(a), -1), axis=1)
    b = rankdata(np.asarray(b).reshape(len(b), -1), axis=1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denominator = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    return np.where(denominator > 0, (a * b).sum(1) / np.where(denominator > 0, denominator, 1),
                    0.0)


def top_k_overlap(a, b, fraction=0.1):
    """Shared fraction of the top ``fraction`` pixels of each pair of maps: (N,)."""
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    k = max(1, int(round(fraction * a.shape[1])))
    top_a = np.argsort(-a, axis=1, kind="stable")[:, :k]
    top_b = np.argsort(-b, axis=1, kind="stable")[:, :k]
    return np.array([len(np.intersect1d(p, q)) / k for p, q in zip(top_a, top_b)])


def drift(dense_maps, maps, dense_predictions, predictions, fraction=0.1):
    """How far a variant's maps moved from the dense model's: mean Spearman correlation, mean
    top-``fraction`` overlap, and the rate at which the predicted class changed."""
    return {"spearman": float(np.mean(spearman(dense_maps, maps))),
            "top_k_overlap": float(np.mean(top_k_overlap(dense_maps, maps, fraction))),
            "prediction_change": float(np.mean(np.asarray(dense_predictions)
                                               != np.asarray(predictions)))}
