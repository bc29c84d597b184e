import pytest

from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.pruning import schedules


def test_default_frequency_fits_small_data_sets():
    steps = schedules.derive_steps("polynomial", steps_per_epoch=40, epochs=20)
    assert steps.frequency == 10  # tfmot's default of 100 would fire twice a run at most
    assert steps.begin_step == 0 and steps.end_step == 480  # 60% of 800 steps
    assert (steps.end_step - steps.begin_step) % steps.frequency == 0
    constant = schedules.derive_steps("constant", steps_per_epoch=40, epochs=20)
    assert constant.end_step == 800


def test_polynomial_reaches_target_exactly_on_a_pruning_step():
    steps = schedules.derive_steps("polynomial", steps_per_epoch=7, epochs=3)
    schedule = schedules.make_schedule("polynomial", 0.9, steps)
    points = schedules.trace(schedule, 21)
    fired = [(step, s) for step, should, s in points if should]
    assert fired[0] == (0, 0.0)
    assert fired[-1][0] == steps.end_step and fired[-1][1] == pytest.approx(0.9)
    sparsities = [s for _, s in fired]
    assert sparsities == sorted(sparsities)


def test_constant_schedule_prunes_to_target_from_the_start():
    steps = schedules.derive_steps("constant", steps_per_epoch=8, epochs=2)
    points = schedules.trace(schedules.make_schedule("constant", 0.75, steps), 16)
    assert points[0] == (0, True, 0.75)
    assert [p[0] for p in points if p[1]] == [0, 2, 4, 6, 8, 10, 12, 14, 16]


def test_schedule_config_roundtrip():
    steps = schedules.derive_steps("polynomial", 10, 5)
    schedule = schedules.make_schedule("polynomial", 0.8, steps, initial_sparsity=0.2)
    clone = type(schedule).from_config(schedule.get_config()["config"])
    assert clone.get_config() == schedule.get_config()


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="cubic"), "unknown schedule 'cubic'; registered: constant, polynomial"),
    (dict(begin_step=50, end_step=20), r"`begin_step` must be before `end_step`, got begin_step=50, end_step=20"),
    (dict(begin_step=500), r"`begin_step` \(500\) must be below the fine-tuning steps \(400"),
    (dict(end_step=1000), r"`end_step` \(1000\) must be at most the fine-tuning steps \(400\)"),
    (dict(end_step=105, frequency=10), r"must be a multiple of `frequency` \(10\)"),
    (dict(frequency=0), r"`frequency` must be an integer >= 1, got 0"),
])
def test_bad_steps(kwargs, message):
    args = dict(kind="polynomial", steps_per_epoch=40, epochs=10)
    args.update(kwargs)
    with pytest.raises((TfpruneError, UnknownNameError), match=message):
        schedules.derive_steps(**args)


@pytest.mark.parametrize("value", [1.0, 1.3, -0.1, "0.5"])
def test_target_sparsity_range(value):
    steps = schedules.derive_steps("constant", 10, 2)
    with pytest.raises(TfpruneError, match=r"`target_sparsity` must be in \[0, 1\), got"):
        schedules.make_schedule("constant", value, steps)


def test_initial_above_target_refused():
    steps = schedules.derive_steps("polynomial", 10, 2)
    with pytest.raises(TfpruneError, match="`initial_sparsity` .* must not exceed `target_sparsity`"):
        schedules.make_schedule("polynomial", 0.5, steps, initial_sparsity=0.6)
