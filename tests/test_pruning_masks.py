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


def test_column_norms_and_mean_by_hand():
    kernel = np.array([[3.0, 1.0, 0.0], [4.0, 0.0, 2.0]])  # unit norms 5, 1, 2
    np.testing.assert_allclose(masks.column_norms(kernel), [5, 1, 2])
    assert masks.mean_column_norm(kernel) == pytest.approx(8 / 3)
    mask = np.array([[1, 0, 1], [1, 0, 1]])  # unit 1 pruned: mean over kept units only
    assert masks.mean_column_norm(kernel, mask) == pytest.approx(3.5)


def test_low_norm_unit_pruning_caps():
    kernel = np.array([[10.0, 9.0, 1.0, 1.0, 0.5, 8.0, 0.1, 10.0]])  # mean 4.95
    mask = np.ones_like(kernel)
    new, candidates = masks.low_norm_prune(kernel, mask, "unit", 0.5, max_step=0.25,
                                             max_sparsity=0.9)
    assert candidates == 4                       # 1, 1, 0.5, 0.1 < 2.475
    np.testing.assert_array_equal(new[0], [1, 1, 1, 1, 0, 1, 0, 1])  # the 2 lowest (25% of 8)
    capped, _ = masks.low_norm_prune(kernel, mask, "unit", 0.5, max_step=0.9, max_sparsity=0.25)
    assert masks.layer_sparsity(capped, "unit") == 0.25


def test_layers_with_more_low_norm_columns_lose_more():
    rng = np.random.default_rng(0)
    even = np.ones((4, 8))
    skewed = np.ones((4, 8))
    skewed[:, :4] = 0.1
    for kernel, expected in ((even, 0.0), (skewed, 0.5)):
        new, _ = masks.low_norm_prune(kernel * (1 + 0.01 * rng.random(kernel.shape)),
                                        np.ones_like(kernel), "unit", 0.8, 0.5, 0.9)
        assert masks.layer_sparsity(new, "unit") == expected


def test_low_norm_weight_pruning():
    kernel = np.array([[2.0, 0.1], [2.0, 2.0], [0.05, 2.0], [2.0, 2.0]])
    new, candidates = masks.low_norm_prune(kernel, np.ones_like(kernel), "weight", 0.5, 0.5, 0.9)
    # mean column norm ~3.49; per-weight scale 3.49 / sqrt(4) = 1.75; threshold 0.87
    assert candidates == 2 and new[0, 1] == 0 and new[2, 0] == 0 and new.sum() == 6


def test_lowest_scores_mask():
    scores = np.array([[0.1, 5.0, 0.2], [0.1, 5.0, 0.3]])
    mask = np.ones_like(scores)
    np.testing.assert_array_equal(masks.lowest_scores_mask(scores, mask, "unit", 1)[0], [0, 1, 1])
    np.testing.assert_array_equal(masks.lowest_scores_mask(scores, mask, "weight", 2).sum(), 4)
