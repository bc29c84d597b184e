"""Data set sources on small files the tests write: IDX, MNIST search order, npz, image folders."""

import gzip
import os

import numpy as np
import pytest

from tfprune import data
from tfprune.datasets import idx, mnist
from tfprune.datasets.base import DatasetSpec, Splits
from tfprune.errors import DatasetNotAvailableError, TfpruneError


def fake_mnist(folder, train=120, test=40, seed=0):
    """The four IDX .gz files of a tiny MNIST-shaped data set (10 classes)."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    labels = {"train": np.arange(train) % 10, "t10k": np.arange(test) % 10}
    for split, n in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels[split] * 20  # a trace of the label, for checks
        idx.write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), images)
        idx.write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), labels[split])
    return folder


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No Keras cache and no system copy: only what a test puts in place counts."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(mnist, "SYSTEM_DIR", str(tmp_path / "system"))
    return tmp_path


def test_idx_round_trip_and_header_checks(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte.gz"
    idx.write_idx(path, array)
    np.testing.assert_array_equal(idx.read_idx(path), array)
    raw = gzip.decompress(path.read_bytes())
    (tmp_path / "raw").write_bytes(raw)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "raw"), array)  # uncompressed too
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(TfpruneError, match=r"short.*truncated or corrupt: shape \(2, 3, 4\) needs 24 bytes of data, the file holds 19"):
        idx.read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(TfpruneError, match=r"magic.*is not an IDX file \(bad magic number 1234"):
        idx.read_idx(tmp_path / "magic")
    (tmp_path / "cut.gz").write_bytes(path.read_bytes()[:20])
    with pytest.raises(TfpruneError, match=r"cut.gz.*is not a readable IDX file"):
        idx.read_idx(tmp_path / "cut.gz")
    with pytest.raises(TfpruneError, match="expected an IDX file of 1 dimension"):
        idx.read_idx(path, expect_ndim=1)


def test_mnist_search_order_and_splits(nowhere):
    data_dir = fake_mnist(str(nowhere / "mine" / "fashion-mnist"))
    fake_mnist(str(nowhere / "system" / "fashion-mnist"), train=200, seed=1)
    assert mnist.locate("fashion_mnist", str(nowhere / "mine")) == ("idx", data_dir)
    assert mnist.locate("fashion_mnist")[1] == str(nowhere / "system" / "fashion-mnist")
    loaded = data.load_data("fashion_mnist", batch_size=16, data_dir=str(nowhere / "mine"))
    assert loaded.sizes == {"train": 108, "validation": 12, "test": 40}
    x, y = loaded.numpy("test")
    assert x.shape == (40, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    np.testing.assert_allclose(x[:, 0, 0, 0], y * 20 / 255.0, atol=1e-6)  # images match labels
    assert sorted(np.bincount(loaded.numpy("validation")[1])) == [1] * 8 + [2] * 2  # stratified


def test_mnist_npz_in_the_keras_cache(nowhere):
    cache = nowhere / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(cache / "mnist.npz", x_train=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8),
             y_train=np.arange(50) % 10, x_test=np.zeros((20, 28, 28), np.uint8),
             y_test=np.arange(20) % 10)
    assert data.load_data("mnist").sizes == {"train": 45, "validation": 5, "test": 20}


def test_nothing_found_lists_every_place_and_how_to_fill_one(nowhere):
    with pytest.raises(DatasetNotAvailableError) as err:
        data.load_data("fashion_mnist", data_dir=str(nowhere / "mine"))
    message = str(err.value)
    for place in (str(nowhere / "mine"), str(nowhere / "keras_home" / "datasets" / "fashion-mnist"),
                  str(nowhere / "system" / "fashion-mnist")):
        assert place in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "keras.datasets.fashion_mnist.load_data()" in message and "--dataset=digits" in message


def test_corrupt_idx_file_is_named(nowhere):
    folder = fake_mnist(str(nowhere / "mine"))
    path = os.path.join(folder, "t10k-labels-idx1-ubyte.gz")
    content = gzip.decompress(open(path, "rb").read())
    with open(path, "wb") as f:
        f.write(gzip.compress(content[:-3]))
    with pytest.raises(TfpruneError, match="t10k-labels-idx1-ubyte.gz' is truncated or corrupt"):
        data.load_data("fashion_mnist", data_dir=folder)


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.random((90, 12, 10)).astype(np.float32), y_train=np.arange(90) % 3)
    spec = data.dataset_spec(f"npz:{path}")
    assert spec.input_shape == (12, 10, 1) and spec.num_classes == 3
    loaded = data.load_data(f"npz:{path}", batch_size=8)
    assert loaded.sizes == {"train": 63, "validation": 9, "test": 18}
    np.savez(path, x_train=rng.integers(0, 255, (40, 6, 6, 3), dtype=np.uint8),
             y_train=np.arange(40) % 4, x_test=rng.integers(0, 255, (8, 6, 6, 3), dtype=np.uint8),
             y_test=np.arange(8) % 4, x_val=np.zeros((4, 6, 6, 3), np.uint8), y_val=np.arange(4))
    loaded = data.load_data(f"npz:{path}")
    assert loaded.sizes == {"train": 40, "validation": 4, "test": 8} and loaded.num_classes == 4
    assert loaded.numpy("test")[0].max() <= 1.0


@pytest.mark.parametrize("arrays, message", [
    (dict(images=np.zeros((4, 8, 8)), labels=np.arange(4)),
     r"must hold arrays x_train and y_train \(and optionally x_test, y_test, x_val, y_val\); found: images, labels"),
    (dict(x_train=np.zeros((10, 8, 8)), y_train=np.arange(9) % 2),
     "x_train has 10 examples but y_train has 9"),
    (dict(x_train=np.zeros((10, 64)), y_train=np.arange(10) % 2),
     r"x_train must have shape \(N, H, W\) or \(N, H, W, C\), got \(10, 64\)"),
    (dict(x_train=np.zeros((10, 8, 8)), y_train=np.zeros(10, int)), "needs at least 2 classes in y_train, got 1"),
    (dict(x_train=np.zeros((10, 8, 8)), y_train=np.arange(10) % 2 - 1), "labels must be integers >= 0, got -1"),
    (dict(x_train=np.zeros((10, 8, 8)), y_train=np.arange(10) % 2, x_test=np.zeros((4, 8, 8))),
     "x_test and y_test must be given together, got only x_test"),
    (dict(x_train=np.zeros((10, 8, 8)), y_train=np.arange(10) % 2, x_test=np.zeros((4, 9, 8)),
          y_test=np.arange(4) % 2), r"x_test images have shape \(9, 8, 1\), x_train images \(8, 8, 1\)"),
])
def test_bad_npz_is_one_clear_error(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(TfpruneError, match=message):
        data.load_data(f"npz:{path}")


def write_folder(root, classes=("cat", "dog"), count=6, size=(10, 12), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(count):
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(os.path.join(root, name, f"{i}.png"))
    return root


def test_image_folder_dataset(tmp_path):
    root = write_folder(str(tmp_path / "pets"), classes=("cat", "dog", "fox"), count=10)
    spec = data.dataset_spec(f"folder:{root}")
    assert spec.input_shape == (10, 12, 1) and spec.num_classes == 3
    assert spec.class_names == ("cat", "dog", "fox")
    loaded = data.load_data(f"folder:{root}", image_size=8, batch_size=4)
    assert loaded.input_shape == (8, 8, 1)
    assert sum(loaded.sizes.values()) == 30 and loaded.sizes["test"] == 6
    rgb = write_folder(str(tmp_path / "rgb"), mode="RGB")
    assert data.dataset_spec(f"folder:{rgb}").input_shape == (10, 12, 3)


def test_bad_image_folders(tmp_path):
    root = write_folder(str(tmp_path / "pets"))
    os.makedirs(os.path.join(root, "empty"))
    with pytest.raises(TfpruneError, match=r"class folder '.*empty' holds no images"):
        data.load_data(f"folder:{root}")
    one = write_folder(str(tmp_path / "one"), classes=("cat",))
    with pytest.raises(TfpruneError, match="needs one subfolder per class, at least 2; found 1"):
        data.load_data(f"folder:{one}")
    with pytest.raises(TfpruneError, match="names no directory"):
        data.load_data(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(TfpruneError, match="`image_size` applies to folder: data sets, not 'digits'"):
        data.load_data("digits", image_size=8)
    with pytest.raises(TfpruneError, match="`image_size` must be a size such as 32 or 32x48, got 'big'"):
        data.load_data(f"folder:{one}", image_size="big")


def test_registering_a_dataset_is_public_api():
    def loader(spec, data_dir, validation_fraction, split_seed):
        rng = np.random.default_rng(0)
        return Splits.from_arrays(rng.random((60, 4, 4)).astype(np.float32), np.arange(60) % 2,
                                  validation_fraction=validation_fraction, split_seed=split_seed)

    data.register_dataset(DatasetSpec("tiny_public", (4, 4, 1), 2, "test data", loader))
    try:
        assert data.load_data("tiny_public").sizes == {"train": 42, "validation": 6, "test": 12}
        with pytest.raises(TfpruneError, match="must be a tfprune.data.DatasetSpec"):
            data.register_dataset({"name": "x"})
    finally:
        data.DATASETS._entries.pop("tiny_public")


def test_tfds_build_dependency_is_installed():
    """tensorflow_datasets' builder imports importlib_resources lazily (preparing CIFAR)."""
    from tensorflow_datasets.core import dataset_builder

    assert dataset_builder.importlib_resources.abc is not None


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="the real Fashion-MNIST files are not installed: run `make data` "
                           "(apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_files():
    loaded = data.load_data("fashion_mnist", batch_size=256)
    assert loaded.sizes == {"train": 54000, "validation": 6000, "test": 10000}
    x, y = loaded.numpy("test")
    assert x.shape == (10000, 28, 28, 1) and np.bincount(y).tolist() == [1000] * 10
    assert np.bincount(loaded.numpy("validation")[1]).tolist() == [600] * 10  # stratified
