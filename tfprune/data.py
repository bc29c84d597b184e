"""Datasets: a registry of named data sets, and the batched train/validation/test pipelines.

Built in: ``digits`` (scikit-learn's 1,797 real 8x8 handwritten digits, embedded: no download);
``mnist`` and ``fashion_mnist`` from the original IDX files wherever they are on this machine
(datasets/mnist.py says where it looks); ``cifar10`` and ``cifar100`` from a prepared tfds
directory. Your own: ``npz:PATH`` (NumPy arrays) and ``folder:PATH`` (one subfolder of images per
class), or any data set registered in Python with ``register_dataset(DatasetSpec(...))``.
Text: ``fortunes`` (Debian's quotations by category, a topic task), ``tsv:PATH`` and ``glue:DIR``
(GLUE-format files), tokenized by a word tokenizer fitted on the training split
(datasets/tokenizer.py) into int32 sequences of ``sequence_length`` ids. Nothing is ever
downloaded.
"""

import dataclasses
import functools
import os

import numpy as np

from tfprune import checks
from tfprune.datasets import folder, fortunes, mnist, npz
from tfprune.datasets import text as text_source
from tfprune.datasets import tfds as tfds_source
from tfprune.datasets.base import DatasetSpec, Splits
from tfprune.datasets.tokenizer import SEQUENCE_LENGTH, VOCABULARY_SIZE, TextOptions
from tfprune.errors import TfpruneError
from tfprune.lazy import tf
from tfprune.registry import Registry

DATASETS = Registry("dataset")
TOKENIZER_FILE = "tokenizer.json"  # a text run's tokenizer, in its run directory
PREFIXES = (npz.PREFIX, folder.PREFIX) + text_source.PREFIXES


def register_dataset(spec):
    """Register a DatasetSpec under its name; scripts accept it as --dataset once registered."""
    if not isinstance(spec, DatasetSpec):
        raise TfpruneError(f"`spec` must be a tfprune.data.DatasetSpec, got {type(spec).__name__}")
    return DATASETS.register(spec.name, spec)


@functools.lru_cache(maxsize=32)
def _file_spec(name, image_size, stamp):
    del stamp  # part of the cache key: a changed file is read again
    if name.startswith(npz.PREFIX):
        return npz.spec(name[len(npz.PREFIX):])
    if name.startswith(text_source.PREFIXES):
        return text_source.spec(name)
    return folder.spec(name[len(folder.PREFIX):], image_size)


def dataset_spec(name, image_size=None):
    """The DatasetSpec of a registered name, ``npz:PATH``, ``folder:PATH``, ``tsv:PATH`` or
    ``glue:DIR``."""
    if isinstance(name, str) and name.startswith(PREFIXES):
        path = name.split(":", 1)[1]
        if not path:
            raise TfpruneError(f"`dataset` {name!r} needs a path after the colon")
        if image_size is not None and not name.startswith(folder.PREFIX):
            raise TfpruneError(f"`image_size` applies to folder: data sets, not {name!r}")
        if image_size is not None:
            image_size = check_image_size(image_size)
        return _file_spec(name, image_size, _stamp(name, path))
    if image_size is not None:
        raise TfpruneError(f"`image_size` applies to folder: data sets, not {name!r}")
    try:
        return DATASETS.get(name)
    except TfpruneError as err:
        raise type(err)(f"{err}; or npz:PATH (your arrays), folder:PATH (your images), "
                        "tsv:PATH or glue:DIR (your texts)") from None


def _stamp(name, path):
    """The modification times of what a file source reads (a glue: directory: its two files)."""
    paths = [path]
    if name.startswith(text_source.GLUE_PREFIX):
        paths = [os.path.join(path, f) for f in text_source.GLUE_FILES]
    stamps = []
    for p in paths:
        try:
            stamps.append(os.stat(p).st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def check_dataset(name, image_size=None):
    """Check that ``name`` names a data set (a file source is opened and checked); return
    ``image_size`` normalised to (height, width), or None."""
    dataset_spec(name, image_size)
    return None if image_size is None else check_image_size(image_size)


def check_image_size(value):
    """(height, width) from 32, (32, 32) or '32x48'."""
    try:
        if isinstance(value, str):
            parts = [int(v) for v in value.lower().replace("x", ",").split(",")]
        elif isinstance(value, int):
            parts = [value]
        else:
            parts = [int(v) for v in value]
    except (TypeError, ValueError):
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise TfpruneError(f"`image_size` must be a size such as 32 or 32x48, got {value!r}")
    return tuple(parts)


def check_dataset_name(field, name):
    """A flag's or field's data set name: registered (also after import, before parsing),
    npz:PATH, folder:PATH, tsv:PATH or glue:DIR; files are opened later, by check_dataset,
    with full errors."""
    if isinstance(name, str) and (name.startswith(PREFIXES) or name in DATASETS):
        return name
    raise TfpruneError(f"unknown dataset {name!r}; choose {names_help()}")


def names_help():
    return (f"{'|'.join(DATASETS.names())}, or npz:PATH (arrays x_train, y_train[, x_test, "
            "y_test, x_val, y_val]), folder:PATH (one subfolder of images per class), tsv:PATH "
            "(a GLUE-format TSV file: sentence or a pair, and label) or glue:DIR (train.tsv and "
            "dev.tsv)")


@dataclasses.dataclass
class Data:
    """Batched pipelines for one dataset, plus what models and evaluators need to know."""

    name: str
    input_shape: tuple
    num_classes: int
    batch_size: int
    sizes: dict
    train: "tf.data.Dataset"  # shuffled (and augmented if asked), batched, prefetched
    validation: "tf.data.Dataset"
    test: "tf.data.Dataset"
    _raw: Splits = dataclasses.field(repr=False, default=None)
    class_names: tuple = None  # the data set's names of its classes, where it has them
    tokenizer: object = None  # text data: the Tokenizer fitted on the training split; else None

    @property
    def kind(self):
        """'text' (int32 token ids (sequence_length,)) or 'image'."""
        return "image" if self.tokenizer is None else "text"

    @property
    def vocabulary_size(self):
        """Text data: the range of the token ids (the tokenizer's vocabulary, reserved ids
        included), what a text model's embedding needs; None for image data."""
        return None if self.tokenizer is None else self.tokenizer.vocabulary_size

    @property
    def steps_per_epoch(self):
        return -(-self.sizes["train"] // self.batch_size)

    def split(self, name):
        """The batched, unshuffled pipeline of a split: 'train' (no augmentation), 'validation', 'test'."""
        if name not in ("train", "validation", "test"):
            raise TfpruneError(f"`split` must be one of train, validation, test; got {name!r}")
        return _batch(getattr(self._raw, name), self.batch_size)

    def numpy(self, name, limit=None):
        """(inputs, labels) of a split as NumPy arrays, in a fixed order (images float32, or
        token ids int32); ``limit`` caps the count."""
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
        """Training inputs (no augmentation) for int8 calibration: images as a float32 array,
        or the token ids (int32) an embedding model is fed."""
        if count < 1:
            raise TfpruneError(f"`count` must be >= 1, got {count}")
        return self.numpy("train", limit=count)[0]

    def save_tokenizer(self, directory):
        """Text data: the tokenizer written into ``directory`` as tokenizer.json (the ids a
        deployed model is fed: Tokenizer.load reads it); its file name, or None for image
        data."""
        if self.tokenizer is None:
            return None
        self.tokenizer.save(os.path.join(directory, TOKENIZER_FILE))
        return TOKENIZER_FILE

    def texts(self, name):
        """The texts of a split (strings, or pairs), in the order ``numpy`` gives them."""
        if name not in ("train", "validation", "test"):
            raise TfpruneError(f"`split` must be one of train, validation, test; got {name!r}")
        if self._raw is None or self._raw.texts is None:
            raise TfpruneError(f"data set {self.name!r} has no texts: it is not text data")
        return list(self._raw.texts[name])


def _batch(ds, batch_size):
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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

    return Splits(to_ds(x_train, y_train), to_ds(x_val, y_val), to_ds(x_test, y_test),
                  {"train": len(x_train), "validation": len(x_val), "test": len(x_test)})


register_dataset(DatasetSpec(
    "digits", (8, 8, 1), 10,
    "scikit-learn's 1,797 real 8x8 handwritten digits (embedded, no download)", _load_digits,
    augmentation="shift"))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
register_dataset(DatasetSpec(
    "fashion_mnist", (28, 28, 1), 10,
    "Fashion-MNIST: 60,000 + 10,000 28x28 clothing images (local IDX files, see datasets/mnist.py)",
    # Measured (cnn, 15 epochs, seed 0): no augmentation 92.42%, flips 92.35%, 3-pixel shifts
    # and flips 91.05% (underfits: train accuracy below validation).
    mnist.loader, augmentation="none", epochs=15, fine_tune_epochs=3, batch_size=128,
    class_names=FASHION_CLASSES))
register_dataset(DatasetSpec(
    "mnist", (28, 28, 1), 10,
    "MNIST: 60,000 + 10,000 28x28 handwritten digits (local IDX files or mnist.npz)",
    # The Fashion-MNIST defaults; not measured here (no MNIST files on these machines).
    mnist.loader, augmentation="none", epochs=15, fine_tune_epochs=3, batch_size=128))
register_dataset(DatasetSpec(
    "fortunes", None, None,
    "Debian's fortunes: English quotations by the category they are filed under (a topic task; "
    f"categories of at least {fortunes.MIN_EXAMPLES} quotations; apt-get install fortunes)",
    # Measured (text_encoder, seed 0, batch 64): validation accuracy peaks at epochs 3-5 and
    # the model overfits after (train 98%); 5 epochs 50.1% validation, 52.5% test in 58 s;
    # 8 epochs 49.6% / 51.3%; 20 epochs 49.3% / 51.0%.
    fortunes.loader, kind="text", epochs=5, fine_tune_epochs=2, batch_size=64))
for _name, _classes, _desc in [
    ("cifar10", 10, "CIFAR-10 (tfds; prepare data_dir first)"),
    ("cifar100", 100, "CIFAR-100 (tfds; prepare data_dir first)"),
]:
    register_dataset(DatasetSpec(_name, (32, 32, 3), _classes, _desc, tfds_source.loader,
                                 augmentation="crop_flip"))


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
def _flip(seed):
    def augment(image, label):
        return tf.image.random_flip_left_right(image, seed=seed), label

    return augment


AUGMENTATIONS.register("flip", lambda seed, shape: _flip(seed))
# 28x28 clothing: shifts of up to 3 pixels and left-right flips (a mirrored shirt is a shirt).
AUGMENTATIONS.register("shift_flip", lambda seed, shape: _pad_crop(seed, shape, pad=max(1, shape[0] // 8), flip=True))


_CLIPPED = set()  # the clipping notices given in this process (each once)


def load_data(name="digits", batch_size=32, seed=0, data_dir=None, augment="none",
              validation_fraction=0.1, split_seed=0, image_size=None, log=None,
              sequence_length=SEQUENCE_LENGTH, vocabulary=None, vocabulary_size=VOCABULARY_SIZE):
    """Load a data set as batched train/validation/test pipelines.

    ``name``: a registered name, ``npz:PATH``, ``folder:PATH`` (``image_size`` resizes a
    folder's images), ``tsv:PATH`` or ``glue:DIR``. ``augment`` names an entry of
    AUGMENTATIONS ('none' for text). ``seed`` drives shuffling and augmentation; ``split_seed``
    fixes which examples land in which split (kept separate so runs with different seeds share
    one test set).

    Text data sets are tokenized (datasets/tokenizer.py) into ``sequence_length`` ids by a
    vocabulary fitted on the training split (``vocabulary_size`` ids, the reserved ones
    included) or read from the file ``vocabulary``; image data sets ignore the three.

    ``batch_size`` (the global batch under a distribution strategy) larger than the training
    split is clipped to it, with a notice through ``log`` (once per process): a batch holds at
    most the split either way (one step per epoch, the same examples and results), but after an
    augmentation's map tf.data fuses map and batch into one op that makes a call per slot of
    the batch, so a batch of 10**9 never came (digits with shifts: Model.fit more than 10
    minutes in issue 30, no batch within 60 s from the pipeline alone; 0.2 s without the fusion).
    """
    spec = dataset_spec(name, image_size)
    checks.check_int("batch_size", batch_size, 1)
    if not 0.0 < validation_fraction < 0.5:
        raise TfpruneError(f"`validation_fraction` must be in (0, 0.5), got {validation_fraction}")
    augmentation = AUGMENTATIONS.get(augment)
    if spec.kind == "text":
        if augmentation is not None:
            raise TfpruneError(f"augmentation {augment!r} is for images; {name!r} is text data "
                               "(token ids): use 'none'")
        raw = spec.loader(spec, data_dir, validation_fraction, split_seed, TextOptions(
            sequence_length, vocabulary, vocabulary_size))
        input_shape = (raw.tokenizer.sequence_length,)
    else:
        raw = spec.loader(spec, data_dir, validation_fraction, split_seed)
        input_shape = tuple(spec.input_shape)
    train_size = max(raw.sizes["train"], 1)
    batch_size, notice = checks.clip_to(
        "the global batch (`batch_size` x replicas)", batch_size, train_size,
        f"the training split of {name} ({train_size} examples)")
    if notice and log is not None and notice not in _CLIPPED:  # it names the data set
        _CLIPPED.add(notice)
        log(f"notice: {notice}")
    train = raw.train.shuffle(max(raw.sizes["train"], 1), seed=seed, reshuffle_each_iteration=True)
    if augmentation is not None:
        train = train.map(augmentation(seed, spec.input_shape),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return Data(
        name=name, input_shape=input_shape, num_classes=raw.num_classes or spec.num_classes,
        batch_size=batch_size, sizes=dict(raw.sizes), train=_batch(train, batch_size),
        validation=_batch(raw.validation, batch_size), test=_batch(raw.test, batch_size), _raw=raw,
        class_names=raw.class_names or spec.class_names, tokenizer=raw.tokenizer)

