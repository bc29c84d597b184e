import numpy as np
import pytest

from tfprune.data import DATASETS, dataset_spec, load_data
from tfprune.errors import DatasetNotAvailableError, TfpruneError, UnknownNameError


def test_digits_splits_are_fixed_stratified_and_normalized():
    data = load_data("digits", batch_size=64, seed=0)
    assert data.input_shape == (8, 8, 1) and data.num_classes == 10
    assert data.sizes == {"train": 1257, "validation": 180, "test": 360}
    assert data.steps_per_epoch == 20
    x_test, y_test = data.numpy("test")
    assert x_test.shape == (360, 8, 8, 1) and x_test.dtype == np.float32
    assert 0.0 <= x_test.min() and x_test.max() <= 1.0
    assert set(np.bincount(y_test)) <= {35, 36, 37}  # stratified: ~36 of each class
    # The split does not depend on the training seed; it does on split_seed.
    other = load_data("digits", batch_size=64, seed=5)
    np.testing.assert_array_equal(other.numpy("test")[1], y_test)
    moved = load_data("digits", batch_size=64, split_seed=1)
    assert not np.array_equal(moved.numpy("test")[0], x_test)


def test_digits_training_pipeline_is_shuffled_batched_and_seeded():
    first = [y.numpy() for _, y in load_data("digits", batch_size=32, seed=3).train.take(2)]
    again = [y.numpy() for _, y in load_data("digits", batch_size=32, seed=3).train.take(2)]
    other = [y.numpy() for _, y in load_data("digits", batch_size=32, seed=4).train.take(2)]
    assert first[0].shape == (32,)
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other))


def test_shift_augmentation_moves_pixels_but_keeps_shape():
    plain = load_data("digits", batch_size=1257, seed=0)
    shifted = load_data("digits", batch_size=1257, seed=0, augment="shift")
    (xp, yp), = plain.train.take(1)
    (xs, ys), = shifted.train.take(1)
    assert xs.shape == xp.shape
    np.testing.assert_array_equal(np.sort(yp.numpy()), np.sort(ys.numpy()))
    assert not np.allclose(np.sort(xp.numpy().ravel()), np.sort(xs.numpy().ravel()))


def test_a_batch_larger_than_the_training_split_is_clipped_to_it_with_one_notice():
    notices = []
    data = load_data("digits", batch_size=10**9, log=notices.append)
    assert data.batch_size == 1257 and data.steps_per_epoch == 1
    assert notices == ["notice: the global batch (`batch_size` x replicas) 1000000000 is larger "
                       "than the training split of digits (1257 examples); using 1257"]
    assert [len(y) for _, y in data.train] == [1257]  # the one batch a batch of 10**9 gives
    assert [len(y) for _, y in data.validation] == [180]
    load_data("digits", batch_size=10**9, log=notices.append)
    assert len(notices) == 1  # once per process
    exact = []
    assert load_data("digits", batch_size=1257, log=exact.append).batch_size == 1257
    assert exact == []


def test_representative_sample():
    data = load_data("digits")
    sample = data.representative_sample(50)
    assert sample.shape == (50, 8, 8, 1) and sample.dtype == np.float32
    with pytest.raises(TfpruneError, match=r"`count` must be >= 1, got 0"):
        data.representative_sample(0)


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="unknown dataset 'imagenet'; registered: cifar10, cifar100, digits, fashion_mnist, fortunes, mnist"):
        load_data("imagenet")
    with pytest.raises(TfpruneError, match=r"`batch_size` must be an integer >= 1, got 0"):
        load_data("digits", batch_size=0)
    with pytest.raises(UnknownNameError, match="unknown augmentation 'rotate'; registered: crop_flip, flip, none, shift, shift_flip"):
        load_data("digits", augment="rotate")
    with pytest.raises(TfpruneError, match=r"`split` must be one of train, validation, test; got 'dev'"):
        load_data("digits").numpy("dev")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_tfds_dataset_without_prepared_data_fails_fast_with_advice(tmp_path, name):
    with pytest.raises(DatasetNotAvailableError) as err:
        load_data(name, data_dir=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path) in message and f"tfds build {name}" in message
    assert f"tfds.builder('{name}'" in message and "--dataset=digits" in message


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_tfds_path_with_mock_data(tmp_path, name):
    import tensorflow_datasets as tfds

    spec = dataset_spec(name)
    (tmp_path / name / "3.0.1").mkdir(parents=True)  # a prepared tfds directory (mocked below)
    (tmp_path / name / "3.0.1" / "dataset_info.json").write_text("{}")
    with tfds.testing.mock_data(num_examples=40):
        data = load_data(name, batch_size=8, data_dir=str(tmp_path), augment=spec.augmentation)
        x, y = next(iter(data.train))
        assert tuple(x.shape) == (8,) + spec.input_shape and x.dtype.name == "float32"
        assert y.dtype.name == "int64" and int(np.max(y)) < spec.num_classes
        assert data.sizes["test"] == 40
        xt, _ = data.numpy("test")
        assert xt.shape[1:] == spec.input_shape and np.isfinite(xt).all()


def test_registry_lists_all_datasets():
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "fashion_mnist", "fortunes",
                                "mnist"]
