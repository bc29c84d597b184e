"""Pruning schedules: tfmot ConstantSparsity / PolynomialDecay with steps fitted to the run.

tfmot prunes only every ``frequency`` steps (default 100), which on a small data set with a
few dozen steps per epoch means it never prunes at all, silently. Here begin, end and frequency
are derived from the steps per epoch and the fine-tuning epochs unless given:

- frequency: a quarter of an epoch (at least one step);
- constant: prune to the target from the first step and keep re-pruning to the end;
- polynomial: ramp from ``initial_sparsity`` to the target over the first ``ramp_fraction`` of the
  steps, ending on a pruning step so the target is reached exactly, then recover at the target.

A schedule is a pure ``step -> (should_prune, sparsity)`` object with get_config/from_config.
"""

import dataclasses

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.registry import Registry

# tfmot's classes, imported on first use (the names without TensorFlow, for flags and configs).
SCHEDULES = Registry("schedule")
SCHEDULES.register_lazy("constant", "tensorflow_model_optimization:sparsity.keras.ConstantSparsity")
SCHEDULES.register_lazy("polynomial", "tensorflow_model_optimization:sparsity.keras.PolynomialDecay")


@dataclasses.dataclass(frozen=True)
class ScheduleSteps:
    begin_step: int
    end_step: int
    frequency: int


def check_step_options(begin_step=None, end_step=None, frequency=None, ramp_fraction=0.6):
    """The schedule options that can be checked without knowing the number of steps."""
    checks.check_optional_int("begin_step", begin_step, 0)
    if end_step is not None and end_step != -1:
        checks.check_int("end_step", end_step, 1)
    checks.check_optional_int("frequency", frequency, 1)
    if not (isinstance(ramp_fraction, (int, float)) and 0 < ramp_fraction <= 1):
        raise TfpruneError(f"`ramp_fraction` must be in (0, 1], got {ramp_fraction!r}")
    if begin_step is not None and end_step not in (None, -1) and begin_step >= end_step:
        raise TfpruneError(
            f"`begin_step` must be before `end_step`, got begin_step={begin_step}, "
            f"end_step={end_step}")


def derive_steps(kind, steps_per_epoch, epochs, begin_step=None, end_step=None, frequency=None,
                 ramp_fraction=0.6):
    """Begin, end and frequency for a schedule of ``kind`` over ``epochs`` of fine-tuning."""
    SCHEDULES.validate(kind)
    for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
        if not isinstance(value, int) or value < 1:
            raise TfpruneError(f"`{name}` must be an integer >= 1, got {value!r}")
    check_step_options(begin_step, end_step, frequency, ramp_fraction)
    total = steps_per_epoch * epochs
    frequency = max(1, steps_per_epoch // 4) if frequency is None else frequency
    begin_step = 0 if begin_step is None else begin_step
    if not isinstance(frequency, int) or frequency < 1:
        raise TfpruneError(f"`frequency` must be an integer >= 1, got {frequency!r}")
    if not isinstance(begin_step, int) or begin_step < 0:
        raise TfpruneError(f"`begin_step` must be an integer >= 0, got {begin_step!r}")
    if begin_step >= total:
        raise TfpruneError(
            f"`begin_step` ({begin_step}) must be below the fine-tuning steps ({total} = "
            f"{epochs} epochs x {steps_per_epoch} steps)")
    if end_step is None:
        if kind == "constant":
            end_step = total
        else:
            events = max(1, round(ramp_fraction * (total - begin_step) / frequency))
            end_step = begin_step + frequency * events
            while end_step > total and events > 1:
                events -= 1
                end_step = begin_step + frequency * events
    if not isinstance(end_step, int) or (end_step != -1 and end_step <= begin_step):
        raise TfpruneError(
            f"`begin_step` must be before `end_step`, got begin_step={begin_step}, "
            f"end_step={end_step}")
    if kind == "polynomial":
        if end_step == -1 or end_step > total:
            raise TfpruneError(
                f"`end_step` ({end_step}) must be at most the fine-tuning steps ({total}) for the "
                "polynomial schedule to reach its target")
        if (end_step - begin_step) % frequency:
            raise TfpruneError(
                f"`end_step - begin_step` ({end_step - begin_step}) must be a multiple of "
                f"`frequency` ({frequency}) so the last pruning step reaches the target")
    return ScheduleSteps(begin_step, end_step, frequency)


def make_schedule(kind, target_sparsity, steps, initial_sparsity=0.0, power=3):
    """A tfmot PruningSchedule of ``kind`` reaching ``target_sparsity`` on ``steps``."""
    cls = SCHEDULES.get(kind)
    target_sparsity = checks.check_sparsity("target_sparsity", target_sparsity)
    if kind == "constant":
        return cls(target_sparsity, begin_step=steps.begin_step, end_step=steps.end_step,
                   frequency=steps.frequency)
    initial_sparsity = checks.check_sparsity("initial_sparsity", initial_sparsity)
    if initial_sparsity > target_sparsity:
        raise TfpruneError(
            f"`initial_sparsity` ({initial_sparsity}) must not exceed `target_sparsity` "
            f"({target_sparsity})")
    return cls(initial_sparsity, target_sparsity, begin_step=steps.begin_step,
               end_step=steps.end_step, power=power, frequency=steps.frequency)


def trace(schedule, total_steps):
    """[(step, should_prune, sparsity)] over ``total_steps`` steps, evaluated eagerly."""
    points = []
    for step in range(total_steps + 1):
        should_prune, sparsity = schedule(step)
        points.append((step, bool(should_prune), float(sparsity)))
    return points


def next_pruning_step(schedule, step):
    """The first step after ``step`` at which ``schedule`` prunes, None when it never will
    again: from begin, end and frequency for the SCHEDULES here (tfmot prunes where
    begin <= s <= end, or from begin on when end is -1, and (s - begin) % frequency == 0);
    ``step + 1`` for any other schedule, whose steps cannot be told without running it."""
    if type(schedule) not in SCHEDULES.entries():
        return step + 1
    begin, end, frequency = schedule.begin_step, schedule.end_step, schedule.frequency
    after = max(step + 1, begin)
    after += -(after - begin) % frequency
    return after if end < 0 or after <= end else None
