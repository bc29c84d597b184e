import numpy as np
import pytest

from tfprune.pruning import masks


def test_unit_norms_by_hand():
    kernel = np.array([[3.0, 0.0, 1.0],
                       [4.0, 0.0, -1.0]])  # Dense: 2 inputs, 3 units
    np.testing.assert_allclose(masks.unit_norms(kernel).numpy(), [5.0, 0.0, np.sqrt(2.0)])
    conv = np.zeros((3, 3, 2, 2))
    conv[..., 0] = 1.0  # 18 ones -> sqrt(18)
    conv[0, 0, 0, 1] = -2.0
    np.testing.assert_allclose(masks.unit_norms(conv).numpy(), [np.sqrt(18.0), 2.0])


@pytest.mark.parametrize("sparsity, kept", [(0.0, [1, 1, 1, 1]), (0.5, [1, 0, 1, 0]),
                                            (0.75, [1, 0, 0, 0]), (0.99, [1, 0, 0, 0])])
def test_unit_mask_keeps_largest_units(sparsity, kept):
    kernel = np.array([[9.0, 1.0, 4.0, 2.0]])  # norms 9, 1, 4, 2
    threshold, mask = masks.unit_mask(kernel.astype(np.float32), sparsity)
    np.testing.assert_array_equal(mask.numpy(), [kept])
    assert float(threshold) == pytest.approx(np.sort([9.0, 1.0, 4.0, 2.0])[::-1][sum(kept) - 1])


def test_unit_mask_breaks_ties_to_exact_count():
    kernel = np.ones((2, 6), np.float32)
    _, mask = masks.unit_mask(kernel, 0.5)
    assert int(masks.units_of_mask(mask).numpy().sum()) == 3


def test_keep_count_and_units_kept():
    assert int(masks.keep_count(32, 0.9)) == 3
    assert int(masks.keep_count(4, 0.99)) == 1
    kernel = np.zeros((3, 3, 4, 5))
    kernel[1, 1, 0, 2] = 0.1
    kernel[..., 4] = 1
    assert masks.units_kept(kernel) == 2
