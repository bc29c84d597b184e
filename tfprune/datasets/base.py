"""What a data set is (``DatasetSpec``) and what its loader returns (``Splits``): public API.

A loader is ``loader(spec, data_dir, validation_fraction, split_seed) -> Splits`` (a text data
set's takes a fifth argument, ``text``: the TextOptions of tokenizer.py). Most image loaders hold
arrays and call ``Splits.from_arrays``, which checks them and makes the splits the built-in data
sets use: a seeded, stratified validation split from the training set, and, when no test set is
given, a seeded, stratified 20% test split first. Text loaders hold texts and call
``Splits.from_texts``: the same splits, then a tokenizer fitted on the training split alone, and
int32 token ids (``Splits.from_tokens``).
"""

import dataclasses

import numpy as np

from tfprune.datasets.tokenizer import TextOptions, Tokenizer
from tfprune.errors import TfpruneError
from tfprune.lazy import tf

TEST_FRACTION = 0.2  # held out as the test split when a data set brings none
KINDS = ("image", "text")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A data set, known before loading it. Register one with ``tfprune.data.register_dataset``.

    ``loader(spec, data_dir, validation_fraction, split_seed)`` returns ``Splits``;
    ``augmentation`` is what augment="auto" means for convolutional models ('none', 'shift',
    'crop_flip', 'shift_flip'); ``epochs`` (a baseline's), ``fine_tune_epochs`` and
    ``batch_size`` are what the jobs use when they are not given: the one default of each for
    this data set (tfprune's defaults, sized for digits, unless the data set says otherwise).

    ``kind`` is 'image' (inputs ``input_shape``, float32) or 'text' (int32 token ids: the input
    shape is (sequence_length,), set when loading, so ``input_shape`` is None; ``num_classes``
    and ``class_names`` may be None too, read from the files when loading).
    """

    name: str
    input_shape: tuple
    num_classes: int
    description: str
    loader: object
    augmentation: str = "none"
    epochs: int = 60
    fine_tune_epochs: int = 15
    batch_size: int = 32
    class_names: tuple = None
    kind: str = "image"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TfpruneError(f"a DatasetSpec's `kind` must be one of {', '.join(KINDS)}, got "
                               f"{self.kind!r}")
        if self.kind == "image" and self.input_shape is None:
            raise TfpruneError(f"image data set {self.name!r} needs an `input_shape`")


@dataclasses.dataclass
class Splits:
    """Unbatched datasets of the three splits, and their sizes: (image float32, label int64),
    or for text (token ids int32 (sequence_length,), label int64) with the ``tokenizer`` fitted
    on the training split, the ``texts`` of each split (for a bag-of-words baseline), and the
    class count and names the files gave."""

    train: "tf.data.Dataset"
    validation: "tf.data.Dataset"
    test: "tf.data.Dataset"
    sizes: dict
    tokenizer: Tokenizer = None
    texts: dict = dataclasses.field(default=None, repr=False)
    num_classes: int = None
    class_names: tuple = None

    @classmethod
    def from_arrays(cls, x_train, y_train, x_test=None, y_test=None, x_val=None, y_val=None, *,
                    validation_fraction=0.1, split_seed=0, source="arrays", num_classes=None):
        """Splits from NumPy arrays: images (N, H, W) or (N, H, W, C), uint8 (scaled to [0, 1])
        or float; integer labels (N,). Missing validation (and test) splits are cut from the
        training set, stratified and seeded by ``split_seed``."""
        x_train, y_train = check_arrays(x_train, y_train, "x_train", "y_train", source)
        given = {}
        for xs, ys, x, y in (("x_test", "y_test", x_test, y_test), ("x_val", "y_val", x_val, y_val)):
            if (x is None) != (y is None):
                raise TfpruneError(f"{source}: {xs} and {ys} must be given together, got only "
                                   f"{xs if x is not None else ys}")
            if x is not None:
                given[xs] = check_arrays(x, y, xs, ys, source)
                if given[xs][0].shape[1:] != x_train.shape[1:]:
                    raise TfpruneError(f"{source}: {xs} images have shape "
                                       f"{given[xs][0].shape[1:]}, x_train images "
                                       f"{x_train.shape[1:]}; they must match")
        labels = np.concatenate([y_train] + [y for _, y in given.values()])
        check_labels(y_train, labels, num_classes, source)
        cut = cut_splits(y_train, "x_test" not in given, "x_val" not in given,
                         validation_fraction, split_seed, source)
        for name, key in (("test", "x_test"), ("validation", "x_val")):
            if name in cut:
                given[key] = (x_train[cut[name]], y_train[cut[name]])
        parts = {"train": (x_train[cut["train"]], y_train[cut["train"]]),
                 "validation": given["x_val"], "test": given["x_test"]}
        return cls(**{k: _to_dataset(*v) for k, v in parts.items()},
                   sizes={k: int(len(v[1])) for k, v in parts.items()})

    @classmethod
    def from_texts(cls, texts, labels, test_texts=None, test_labels=None, *, text=None,
                   validation_fraction=0.1, split_seed=0, source="texts", num_classes=None,
                   class_names=None):
        """Splits of texts (strings, or (first, second) pairs) and integer labels: the
        validation (and, without a test set, the test) split cut as ``from_arrays`` cuts them,
        then the tokenizer of ``text`` (TextOptions) fitted on the training split alone (or
        read from its vocabulary file), and every split encoded with it."""
        text = text or TextOptions()
        texts = list(texts)
        labels = label_array(labels, len(texts), "texts", "labels", source)
        given_test = None
        if (test_texts is None) != (test_labels is None):
            raise TfpruneError(f"{source}: test texts and test labels must be given together")
        all_labels = labels
        if test_texts is not None:
            test_texts = list(test_texts)
            test_labels = label_array(test_labels, len(test_texts), "test texts", "test labels",
                                      source)
            given_test = (test_texts, test_labels)
            all_labels = np.concatenate([labels, test_labels])
        classes = check_labels(labels, all_labels, num_classes, source)
        cut = cut_splits(labels, given_test is None, True, validation_fraction, split_seed,
                         source)
        parts = {name: ([texts[i] for i in index], labels[index]) for name, index in cut.items()}
        if given_test is not None:
            parts["test"] = given_test
        tokenizer = text.tokenizer(parts["train"][0])
        return cls.from_tokens(
            *(a for name in ("train", "validation", "test")
              for a in (tokenizer.encode(parts[name][0]), parts[name][1])),
            tokenizer=tokenizer, num_classes=classes, class_names=class_names,
            texts={name: part[0] for name, part in parts.items()}, source=source)

    @classmethod
    def from_tokens(cls, x_train, y_train, x_val, y_val, x_test, y_test, *, tokenizer,
                    num_classes, class_names=None, texts=None, source="tokens"):
        """Splits of token ids (N, sequence_length) and integer labels, as given (no
        splitting): int32 ids, int64 labels, and the tokenizer that made them."""
        parts = {}
        for name, x, y in (("train", x_train, y_train), ("validation", x_val, y_val),
                           ("test", x_test, y_test)):
            x, y = np.asarray(x), np.asarray(y)
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
                raise TfpruneError(f"{source}: the {name} tokens must be integer ids of shape "
                                   f"(N, sequence_length), got {x.dtype} {x.shape}")
            if x.shape[1] != tokenizer.sequence_length:
                raise TfpruneError(f"{source}: the {name} tokens have length {x.shape[1]}, the "
                                   f"tokenizer's sequence_length is {tokenizer.sequence_length}")
            if len(x) != len(y):
                raise TfpruneError(f"{source}: {len(x)} {name} sequences but {len(y)} labels")
            if len(x) and (x.min() < 0 or x.max() >= tokenizer.vocabulary_size):
                raise TfpruneError(f"{source}: {name} token ids must be in [0, "
                                   f"{tokenizer.vocabulary_size}), got {x.min()}..{x.max()}")
            parts[name] = (x.astype(np.int32), y.astype(np.int64))
        datasets = {k: tf.data.Dataset.from_tensor_slices(v) for k, v in parts.items()}
        return cls(**datasets, sizes={k: int(len(v[1])) for k, v in parts.items()},
                   tokenizer=tokenizer, texts=texts, num_classes=int(num_classes),
                   class_names=None if class_names is None else tuple(class_names))


def check_labels(y_train, labels, num_classes, source):
    """The class count (``num_classes``, or the largest label + 1), checked against every
    label, with at least 2 classes in the training labels."""
    classes = num_classes or int(labels.max()) + 1
    if labels.max() >= classes:
        raise TfpruneError(f"{source}: labels must be integers in [0, {classes}), got "
                           f"{int(labels.max())}")
    if np.unique(y_train).size < 2:
        raise TfpruneError(f"{source}: needs at least 2 classes in y_train, got "
                           f"{np.unique(y_train).size}")
    return classes


def cut_splits(y, test, validation, validation_fraction, split_seed, source):
    """{split: indices into ``y``}: 'train', and the splits cut from it, each stratified and
    seeded by ``split_seed``: 'test' (``test``: 20%, first) and 'validation'
    (``validation``: ``validation_fraction`` of all the examples). The one way every source
    splits."""
    index = np.arange(len(y))
    cut = {}
    fraction_of_rest = validation_fraction
    if test:
        index, cut["test"] = _split(index, y, TEST_FRACTION, split_seed, source, "test")
        # As for digits: the validation split is validation_fraction of all the examples.
        fraction_of_rest = validation_fraction / (1.0 - TEST_FRACTION)
    if validation:
        if not 0 < validation_fraction < 0.5:
            raise TfpruneError(f"`validation_fraction` must be in (0, 0.5), got "
                               f"{validation_fraction}")
        index, cut["validation"] = _split(index, y[index], fraction_of_rest, split_seed, source,
                                          "validation")
    cut["train"] = index
    return cut


def check_arrays(x, y, x_name, y_name, source):
    """(images with a channel axis, int64 labels), or a TfpruneError naming what is wrong."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or min(x.shape[1:]) < 1:
        raise TfpruneError(f"{source}: {x_name} must have shape (N, H, W) or (N, H, W, C), got "
                           f"{x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TfpruneError(f"{source}: {x_name} must be numbers (uint8 or float), got {x.dtype}")
    y = label_array(y, len(x), x_name, y_name, source)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise TfpruneError(f"{source}: {x_name} contains NaN or infinite values")
    return x, y


def label_array(y, count, x_name, y_name, source):
    """``y`` as int64 class labels (N,) of ``count`` examples (``x_name``'s), or a
    TfpruneError naming what is wrong: the one check of labels, images' and texts'."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise TfpruneError(f"{source}: {y_name} must be integer class labels of shape (N,), "
                           f"got shape {y.shape}")
    if count != len(y):
        raise TfpruneError(f"{source}: {x_name} has {count} examples but {y_name} has {len(y)}")
    if count == 0:
        raise TfpruneError(f"{source}: {x_name} is empty")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise TfpruneError(f"{source}: {y_name} must be integer class labels, got {y.dtype} "
                               "values that are not whole numbers")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise TfpruneError(f"{source}: labels must be integers >= 0, got {int(y.min())}")
    return y


def _split(index, y, fraction, seed, source, what):
    """(kept, held out): ``index`` (the positions of ``y``'s labels) split."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    classes = int(np.count_nonzero(counts))
    held_out = int(np.ceil(fraction * len(y)))
    # Stratified when every class can appear on both sides; plain seeded split otherwise.
    can_stratify = counts[counts > 0].min() >= 2 and classes <= held_out <= len(y) - classes
    stratify = y if can_stratify else None
    try:
        kept, cut, _, _ = train_test_split(index, y, test_size=fraction, stratify=stratify,
                                           random_state=seed)
        return kept, cut
    except ValueError as err:
        raise TfpruneError(f"{source}: cannot cut a {what} split of {fraction:g} from "
                           f"{len(y)} examples ({err})") from None


def _to_dataset(x, y):
    """uint8 images stay uint8 in memory (4x smaller) and are scaled to [0, 1] on the fly."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if x.dtype == np.uint8:
        return ds.map(lambda image, label: (tf.cast(image, tf.float32) / 255.0, label),
                      num_parallel_calls=tf.data.AUTOTUNE)
    if x.dtype != np.float32:
        return tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y))
    return ds
