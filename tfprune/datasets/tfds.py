"""Data sets prepared with tensorflow-datasets, read from a local ``data_dir`` (never downloaded).

Prepare one on a machine with network, with the project's own environment:
``python -c "import tensorflow_datasets as tfds; tfds.builder('cifar10',
data_dir='DIR').download_and_prepare()"``, then copy DIR here and pass ``--data_dir=DIR``.
"""

import os

from tfprune.datasets.base import Splits
from tfprune.errors import DatasetNotAvailableError
from tfprune.lazy import tf

CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def default_data_dir():
    return os.environ.get("TFDS_DATA_DIR",
                          os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def loader(spec, data_dir, validation_fraction, split_seed):
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
            f"on a machine with network access with `python -c \"import tensorflow_datasets as "
            f"tfds; tfds.builder('{spec.name}', data_dir='{data_dir}').download_and_prepare()\"` "
            f"(or `tfds build {spec.name} --data_dir={data_dir}`) and copy the directory here, "
            "or use --dataset=digits, the embedded dataset that needs no download."
        ) from None

    if spec.name in CIFAR_STATS:
        mean, std = (tf.constant(v, tf.float32) for v in CIFAR_STATS[spec.name])
    else:
        mean, std = tf.constant(0.0), tf.constant(1.0)

    def normalize(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        return (image - mean) / std, tf.cast(label, tf.int64)

    # Cache the uint8 images (4x smaller than float32) and normalize on the fly.
    train, val, test = (d.cache().map(normalize, num_parallel_calls=tf.data.AUTOTUNE)
                        for d in datasets)
    sizes = {}
    for key, split_name, ds in zip(("train", "validation", "test"), splits, (train, val, test)):
        try:
            sizes[key] = int(info.splits[split_name].num_examples)
        except (KeyError, ValueError, TypeError):
            sizes[key] = int(ds.reduce(0, lambda n, _: n + 1).numpy())  # mocked info has no splits
    return Splits(train, val, test, sizes)
