"""Datasets: a registry of loaders returning train/validation/test tf.data pipelines.

``digits`` (scikit-learn's 1,797 real 8x8 handwritten digits, shipped inside scikit-learn) is the
embedded default: it needs no download. The tfds datasets load from a ``data_dir`` a user has
prepared; with no prepared data they fail fast with a message that says how to prepare it.
"""

import dataclasses
import os

import numpy as np

from tfprune.errors import DatasetNotAvailableError, TfpruneError
from tfprune.keras import tf
from tfprune.registry import Registry

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a registered dataset is, known before loading it."""

    name: str
    input_shape: tuple
    num_classes: int
    description: str
    loader: object  # callable(spec, data_dir, validation_fraction, split_seed) -> _RawSplits
    augmentation: str = "none"  # what augment="auto" means for convolutional models


DATASETS = Registry("dataset")


def register_dataset(spec):
    return DATASETS.register(spec.name, spec)


def dataset_spec(name):
    return DATASETS.get(name)


@dataclasses.dataclass
class _RawSplits:
    """Unbatched (image, label) datasets, already normalized to float32."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    sizes: dict


@dataclasses.dataclass
class Data:
    """Batched pipelines for one dataset, plus what models and evaluators need to know."""

    name: str
    input_shape: tuple
    num_classes: int
    batch_size: int
    sizes: dict
    train: tf.data.Dataset  # shuffled (and augmented if asked), batched, prefetched
    validation: tf.data.Dataset
    test: tf.data.Dataset
    _raw: _RawSplits = dataclasses.field(repr=False, default=None)

    @property
    def steps_per_epoch(self):
        return -(-self.sizes["train"] // self.batch_size)

    def split(self, name):
        """The batched, unshuffled pipeline of a split: 'train' (no augmentation), 'validation', 'test'."""
        if name not in ("train", "validation", "test"):
            raise TfpruneError(f"`split` must be one of train, validation, test; got {name!r}")
        return _batch(getattr(self._raw, name), self.batch_size)

    def numpy(self, name, limit=None):
        """(images, labels) of a split as NumPy arrays, in a fixed order; ``limit`` caps the count."""
        if name not in ("train", "validation", "test"):
            raise TfpruneError(f"`split` must be one of train, validation, test; got {name!r}")
        ds = getattr(self._raw, name)
        if limit is not None:
            ds = ds.take(limit)
        xs, ys = [], []
        for x, y in ds.batch(1024):
            xs.append(x.numpy())
            ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys)

    def representative_sample(self, count=200):
        """Training images (no augmentation) for int8 calibration, as a float32 array."""
        if count < 1:
            raise TfpruneError(f"`count` must be >= 1, got {count}")
        return self.numpy("train", limit=count)[0]


def _batch(ds, batch_size):
    return ds.batch(batch_size).prefetch(AUTOTUNE)


# --- digits: the embedded default -------------------------------------------------------------

def _load_digits(spec, data_dir, validation_fraction, split_seed, test_fraction=0.2):
    del data_dir  # shipped inside scikit-learn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]  # pixel values are 0..16
    labels = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=split_seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation_fraction / (1.0 - test_fraction), stratify=y_rest,
        random_state=split_seed)

    def to_ds(x, y):
        return tf.data.Dataset.from_tensor_slices((x, y))

    return _RawSplits(to_ds(x_train, y_train), to_ds(x_val, y_val), to_ds(x_test, y_test),
                      {"train": len(x_train), "validation": len(x_val), "test": len(x_test)})


register_dataset(DatasetSpec(
    "digits", (8, 8, 1), 10,
    "scikit-learn's 1,797 real 8x8 handwritten digits (embedded, no download)", _load_digits,
    augmentation="shift"))


# --- tfds datasets ----------------------------------------------------------------------------

_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def default_data_dir():
    return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def _load_tfds(spec, data_dir, validation_fraction, split_seed):
    del split_seed  # tfds slicing is deterministic
    import tensorflow_datasets as tfds

    data_dir = data_dir or default_data_dir()
    train_pct = int(round(100 * (1.0 - validation_fraction)))
    splits = [f"train[:{train_pct}%]", f"train[{train_pct}%:]", "test"]
    try:
        datasets, info = tfds.load(spec.name, split=splits, data_dir=data_dir, download=False,
                                   as_supervised=True, with_info=True, try_gcs=False)
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as err:
        raise DatasetNotAvailableError(
            f"dataset {spec.name!r} is not prepared in data_dir {data_dir!r} and this machine "
            f"cannot download it ({type(err).__name__}: {str(err).splitlines()[0]}). Prepare it "
            f"on a machine with network access with `tfds build {spec.name} "
            f"--data_dir={data_dir}` (or tfds.builder({spec.name!r}, data_dir=...)"
            ".download_and_prepare()) and copy the directory here, or use --dataset=digits, "
            "the embedded dataset that needs no download."
        ) from None

    if spec.name in _CIFAR_STATS:
        mean, std = (tf.constant(v, tf.float32) for v in _CIFAR_STATS[spec.name])
    else:
        mean, std = tf.constant(0.0), tf.constant(1.0)

    def normalize(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        return (image - mean) / std, tf.cast(label, tf.int64)

    # Cache the uint8 images (4x smaller than float32) and normalize on the fly.
    train, val, test = (d.cache().map(normalize, num_parallel_calls=AUTOTUNE) for d in datasets)
    sizes = {}
    for key, split_name, ds in zip(("train", "validation", "test"), splits, (train, val, test)):
        try:
            sizes[key] = int(info.splits[split_name].num_examples)
        except (KeyError, ValueError, TypeError):
            sizes[key] = int(ds.reduce(0, lambda n, _: n + 1).numpy())  # mocked info has no splits
    return _RawSplits(train, val, test, sizes)


for _name, _shape, _classes, _desc, _augmentation in [
    ("mnist", (28, 28, 1), 10, "MNIST handwritten digits (tfds; prepare data_dir first)", "shift"),
    ("fashion_mnist", (28, 28, 1), 10, "Fashion-MNIST clothing (tfds; prepare data_dir first)",
     "shift"),
    ("cifar10", (32, 32, 3), 10, "CIFAR-10 (tfds; prepare data_dir first)", "crop_flip"),
    ("cifar100", (32, 32, 3), 100, "CIFAR-100 (tfds; prepare data_dir first)", "crop_flip"),
]:
    register_dataset(DatasetSpec(_name, _shape, _classes, _desc, _load_tfds, _augmentation))


def _pad_crop(seed, input_shape, pad, flip):
    height, width, _ = input_shape

    def augment(image, label):
        image = tf.image.resize_with_crop_or_pad(image, height + 2 * pad, width + 2 * pad)
        image = tf.image.random_crop(image, input_shape, seed=seed)
        if flip:
            image = tf.image.random_flip_left_right(image, seed=seed)
        return image, label

    return augment


# name -> (seed, input_shape) -> map function. Digits shift by at most one pixel (an 8x8 digit
# moved further loses strokes); CIFAR gets the standard 4-pixel pad-and-crop plus flips.
AUGMENTATIONS = Registry("augmentation")
AUGMENTATIONS.register("none", None)
AUGMENTATIONS.register("shift", lambda seed, shape: _pad_crop(seed, shape, pad=max(1, shape[0] // 8), flip=False))
AUGMENTATIONS.register("crop_flip", lambda seed, shape: _pad_crop(seed, shape, pad=4, flip=True))


def load_data(name="digits", batch_size=32, seed=0, data_dir=None, augment="none",
              validation_fraction=0.1, split_seed=0):
    """Load a registered dataset as batched train/validation/test pipelines.

    ``augment`` names an entry of AUGMENTATIONS ('none', 'shift', 'crop_flip').
    ``seed`` drives shuffling and augmentation; ``split_seed`` fixes which examples land in
    which split (kept separate so runs with different seeds share one test set).
    """
    spec = dataset_spec(name)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise TfpruneError(f"`batch_size` must be an integer >= 1, got {batch_size!r}")
    if not 0.0 < validation_fraction < 0.5:
        raise TfpruneError(f"`validation_fraction` must be in (0, 0.5), got {validation_fraction}")
    augmentation = AUGMENTATIONS.get(augment)
    raw = spec.loader(spec, data_dir, validation_fraction, split_seed)
    train = raw.train.shuffle(max(raw.sizes["train"], 1), seed=seed, reshuffle_each_iteration=True)
    if augmentation is not None:
        train = train.map(augmentation(seed, spec.input_shape), num_parallel_calls=AUTOTUNE)
    return Data(
        name=name, input_shape=tuple(spec.input_shape), num_classes=spec.num_classes,
        batch_size=batch_size, sizes=dict(raw.sizes), train=_batch(train, batch_size),
        validation=_batch(raw.validation, batch_size), test=_batch(raw.test, batch_size), _raw=raw)
