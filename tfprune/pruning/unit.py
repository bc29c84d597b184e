"""Structured unit pruning: whole Dense neurons and Conv2D filters, ranked by L2 norm.

``UnitPruneLowMagnitude`` is a tfmot ``PruneLowMagnitude`` whose masks cover whole units, so the
schedules, ``UpdatePruningStep`` and ``strip_pruning`` are the same as for weight pruning. A
pruned unit must output exactly zero for the surgery in surgery.py to remove it, so the mask also
zeroes the unit's bias and, when a BatchNormalization layer directly follows, that channel's
gamma and beta ("tied" variables).
"""

from tensorflow_model_optimization.python.core.keras import compat as tfmot_compat
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

from tfprune.keras import keras, tf
from tfprune.pruning import masks, wrapper

# The class to test wrappers against: tfmot's, of which tfprune's wrappers are subclasses.
PruneLowMagnitude = wrapper.TfmotPruneLowMagnitude


class UnitPruning(pruning_impl.Pruning):
    """tfmot's Pruning with unit masks, which also masks the tied per-unit variables."""

    def __init__(self, *args, tied_variables_fn=lambda: [], **kwargs):
        super().__init__(*args, **kwargs)
        self._tied_variables_fn = tied_variables_fn

    def _maybe_update_block_mask(self, weights):
        sparsity = self._pruning_schedule(self._step_fn())[1]
        threshold, mask = masks.unit_mask(weights, sparsity)
        return tf.cast(threshold, weights.dtype), tf.cast(mask, weights.dtype)

    def _values_and_variables(self):
        pairs = []
        for weight, mask, _ in self._pruning_vars:
            pairs.append((tf.cast(weight * mask, weight.dtype), weight))
            # A unit mask is its unit vector broadcast over the kernel: read one slice instead of
            # reducing the whole mask every step (that reduce made unit-pruned training 1.19x
            # slower than dense in benchmarks/; the slice, 1.03-1.04x).
            unit_vector = mask[(0,) * (len(mask.shape) - 1)]
            for variable in self._tied_variables_fn():
                pairs.append((tf.cast(variable * tf.cast(unit_vector, variable.dtype),
                                      variable.dtype), variable))
        return pairs

    def _weight_assign_objs(self):
        # Same as tfmot's, over the kernel and the tied variables.
        def update_fn(distribution, values_and_vars):
            reduced = distribution.extended.batch_reduce_to(
                tf.distribute.ReduceOp.MEAN, values_and_vars)
            return tf.group([
                distribution.extended.update(var, tfmot_compat.assign, args=(value,))
                for value, (_, var) in zip(reduced, values_and_vars)])

        pairs = self._values_and_variables()
        replica_context = tf.distribute.get_replica_context()
        if replica_context:
            return [replica_context.merge_call(update_fn, args=(pairs,))] if pairs else []
        return [tfmot_compat.assign(var, value) for value, var in pairs]


class UnitPruneLowMagnitude(wrapper.PruneLowMagnitude):
    """Prunes whole output units of a Dense or Conv2D layer under a tfmot schedule."""

    def __init__(self, layer, pruning_schedule, tied_layers=(), **kwargs):
        for key in ("block_size", "block_pooling_type", "sparsity_m_by_n"):
            kwargs.pop(key, None)
        super().__init__(layer, pruning_schedule=pruning_schedule, **kwargs)
        self.tied_layers = list(tied_layers)
        self._tied_variables = []

    def tie(self, variables):
        """Mask these per-unit variables (e.g. the following BatchNorm's gamma, beta) too."""
        self._tied_variables.extend(variables)

    def _per_unit_variables(self):
        bias = [self.layer.bias] if getattr(self.layer, "use_bias", False) else []
        # Masked in float32 on the stored variables, as the kernel is (see wrapper.py).
        return [wrapper.stored_variable(v) for v in bias + list(self._tied_variables)]

    def make_pruning_obj(self):
        return UnitPruning(
            training_step_fn=lambda: self.pruning_step,
            pruning_vars=self.pruning_vars,
            pruning_schedule=self.pruning_schedule,
            block_size=(1, 1),
            block_pooling_type="AVG",
            tied_variables_fn=self._per_unit_variables)

    def get_config(self):
        config = super().get_config()
        config["tied_layers"] = list(self.tied_layers)
        return config


def is_unit_prunable(layer):
    """Dense and Conv2D layers (not subclasses such as Conv2DTranspose, whose kernels differ)."""
    return type(layer) in (keras.layers.Dense, keras.layers.Conv2D)


def is_wrapped(model):
    """True when ``model`` still has tfmot pruning wrappers."""
    return any(isinstance(layer, PruneLowMagnitude) for layer in model.layers)
