"""What a data set is (``DatasetSpec``) and what its loader returns (``Splits``): public API.

A loader is ``loader(spec, data_dir, validation_fraction, split_seed) -> Splits``. Most loaders
hold arrays and call ``Splits.from_arrays``, which checks them and makes the splits the built-in
data sets use: a seeded, stratified validation split from the training set, and, when no test
set is given, a seeded, stratified 20% test split first.
"""

import dataclasses

import numpy as np

from tfprune.errors import TfpruneError
from tfprune.lazy import tf

TEST_FRACTION = 0.2  # held out as the test split when a data set brings none


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A data set, known before loading it. Register one with ``tfprune.data.register_dataset``.

    ``loader(spec, data_dir, validation_fraction, split_seed)`` returns ``Splits``;
    ``augmentation`` is what augment="auto" means for convolutional models ('none', 'shift',
    'crop_flip', 'shift_flip'); ``epochs`` (a baseline's), ``fine_tune_epochs`` and
    ``batch_size`` are what the jobs use when they are not given: the one default of each for
    this data set (tfprune's defaults, sized for digits, unless the data set says otherwise).
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


@dataclasses.dataclass
class Splits:
    """Unbatched (image float32, label int64) datasets of the three splits, and their sizes."""

    train: "tf.data.Dataset"
    validation: "tf.data.Dataset"
    test: "tf.data.Dataset"
    sizes: dict

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
        classes = num_classes or int(labels.max()) + 1
        if labels.max() >= classes:
            raise TfpruneError(f"{source}: labels must be integers in [0, {classes}), got "
                               f"{int(labels.max())}")
        if np.unique(y_train).size < 2:
            raise TfpruneError(f"{source}: needs at least 2 classes in y_train, got "
                               f"{np.unique(y_train).size}")
        fraction_of_rest = validation_fraction
        if "x_test" not in given:
            x_train, x_test_, y_train, y_test_ = _split(x_train, y_train, TEST_FRACTION,
                                                        split_seed, source, "test")
            given["x_test"] = (x_test_, y_test_)
            # As for digits: the validation split is validation_fraction of all the examples.
            fraction_of_rest = validation_fraction / (1.0 - TEST_FRACTION)
        if "x_val" not in given:
            if not 0 < validation_fraction < 0.5:
                raise TfpruneError(f"`validation_fraction` must be in (0, 0.5), got "
                                   f"{validation_fraction}")
            x_train, x_val_, y_train, y_val_ = _split(x_train, y_train, fraction_of_rest,
                                                      split_seed, source, "validation")
            given["x_val"] = (x_val_, y_val_)
        parts = {"train": (x_train, y_train), "validation": given["x_val"],
                 "test": given["x_test"]}
        return cls(**{k: _to_dataset(*v) for k, v in parts.items()},
                   sizes={k: int(len(v[1])) for k, v in parts.items()})


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
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise TfpruneError(f"{source}: {y_name} must be integer class labels of shape (N,), "
                           f"got shape {y.shape}")
    if len(x) != len(y):
        raise TfpruneError(f"{source}: {x_name} has {len(x)} examples but {y_name} has {len(y)}")
    if len(x) == 0:
        raise TfpruneError(f"{source}: {x_name} is empty")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise TfpruneError(f"{source}: {y_name} must be integer class labels, got {y.dtype} "
                               "values that are not whole numbers")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise TfpruneError(f"{source}: labels must be integers >= 0, got {int(y.min())}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise TfpruneError(f"{source}: {x_name} contains NaN or infinite values")
    return x, y


def _split(x, y, fraction, seed, source, what):
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    classes = int(np.count_nonzero(counts))
    held_out = int(np.ceil(fraction * len(y)))
    # Stratified when every class can appear on both sides; plain seeded split otherwise.
    can_stratify = counts[counts > 0].min() >= 2 and classes <= held_out <= len(y) - classes
    stratify = y if can_stratify else None
    try:
        return train_test_split(x, y, test_size=fraction, stratify=stratify, random_state=seed)
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
