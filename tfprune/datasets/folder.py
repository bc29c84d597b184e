"""Your own images: ``--dataset=folder:PATH``, one subfolder per class (the layout
``keras.utils.image_dataset_from_directory`` reads), classes in sorted order. Images are read
with Pillow, converted to grayscale when every image is, RGB otherwise, and resized to
``image_size`` (default: the size of the first image); missing splits are cut from them as for
the built-in data sets."""

import os

import numpy as np

from tfprune.datasets.base import DatasetSpec, Splits
from tfprune.errors import TfpruneError

PREFIX = "folder:"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def scan(path):
    """{class name: [image paths]}, sorted; TfpruneError for a missing or empty folder."""
    if not os.path.isdir(path):
        raise TfpruneError(f"`dataset` folder:{path} names no directory")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if len(classes) < 2:
        raise TfpruneError(f"image folder {path!r} needs one subfolder per class, at least 2; "
                           f"found {len(classes)}")
    files = {}
    for name in classes:
        folder = os.path.join(path, name)
        files[name] = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                             if f.lower().endswith(EXTENSIONS))
        if not files[name]:
            raise TfpruneError(f"class folder {folder!r} holds no images ({', '.join(EXTENSIONS)})")
    return files


def _image_size(files, image_size):
    from PIL import Image

    if image_size:
        return tuple(image_size)
    with Image.open(next(iter(files.values()))[0]) as image:
        return (image.height, image.width)


def _mode(files):
    from PIL import Image

    for paths in files.values():
        for p in paths:
            with Image.open(p) as image:
                if image.mode not in ("L", "1", "I;16"):
                    return "RGB"
    return "L"


def spec(path, image_size=None):
    files = scan(path)
    height, width = _image_size(files, image_size)
    channels = 1 if _mode(files) == "L" else 3
    return DatasetSpec(name=PREFIX + path, input_shape=(height, width, channels),
                       num_classes=len(files), description=f"images from {path}",
                       loader=loader, augmentation="shift", class_names=tuple(files))


def read(path, input_shape):
    """(images uint8 (N, H, W, C), labels) of every image, resized to ``input_shape``."""
    from PIL import Image

    files = scan(path)
    height, width, channels = input_shape
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for label, paths in enumerate(files.values()):
        for p in paths:
            try:
                with Image.open(p) as image:
                    image = image.convert(mode)
                    if image.size != (width, height):
                        image = image.resize((width, height), Image.BILINEAR)
                    array = np.asarray(image, np.uint8)
            except OSError as err:
                raise TfpruneError(f"{p!r} is not a readable image: {err}") from None
            images.append(array.reshape(height, width, channels))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


def loader(spec_, data_dir, validation_fraction, split_seed):
    del data_dir
    path = spec_.name[len(PREFIX):]
    x, y = read(path, spec_.input_shape)
    return Splits.from_arrays(x, y, validation_fraction=validation_fraction,
                              split_seed=split_seed, source=path, num_classes=spec_.num_classes)
