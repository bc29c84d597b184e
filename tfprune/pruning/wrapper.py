"""tfprune's pruning wrapper: tfmot's ``PruneLowMagnitude`` that also works under mixed precision.

tfmot 0.8.1 fails under the ``mixed_float16`` policy (tfmot issue #409): the wrapper takes the
global policy, not its layer's, and makes its mask and threshold with ``add_weight``, so they
are AutoCastVariables read as float16 inside the wrapper's call. A float32 layer (the output
layer) then meets a float16 mask in the multiply (TypeError); a float16 layer multiplies in
float16 and assigns ``weight * mask`` back to its float32 weights every step, rounding every
kept weight to float16 precision, silently.

``PruneLowMagnitude`` here takes its layer's policy, and after building points its
``pruning_vars`` (weight, mask, threshold) at the stored float32 variables under the
AutoCastVariables, so the mask update and the mask multiply run in float32 on the master
weights. Nothing changes in float32 (the variables are already the stored ones). It is a
subclass of tfmot's wrapper: ``strip_pruning``, ``UpdatePruningStep`` and isinstance checks
against tfmot's class keep working, and its layer is named as tfmot names it
(``prune_low_magnitude_<layer>``).
"""

from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl, pruning_wrapper


TfmotPruneLowMagnitude = pruning_wrapper.PruneLowMagnitude


def stored_variable(variable):
    """The variable that holds the value: under an AutoCastVariable (mixed precision) the
    float32 variable it wraps (under a tf.distribute strategy, the distributed variable);
    any other variable itself."""
    return getattr(variable, "_variable", variable) if hasattr(variable, "true_dtype") \
        else variable


class PruneLowMagnitude(TfmotPruneLowMagnitude):
    """tfmot's magnitude pruning wrapper, its masks applied in float32 to the stored weights."""

    def __init__(self, layer, *args, **kwargs):
        # The wrapper calls layer.call() inside its own autocast scope: under any other policy
        # than the layer's, a float16 layer would compute in float32 (or the reverse).
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, *args, **kwargs)
        if type(self) is PruneLowMagnitude:
            self._name = f"prune_low_magnitude_{layer.name}"  # tfmot's name, not the class's

    def build(self, input_shape):
        super().build(input_shape)
        self.pruning_vars = [tuple(stored_variable(v) for v in triple)
                             for triple in self.pruning_vars]
        self.pruning_obj = self.make_pruning_obj()

    def make_pruning_obj(self):
        """The object that updates and applies the masks (tfmot's, over ``pruning_vars``)."""
        return pruning_impl.Pruning(
            training_step_fn=lambda: self.pruning_step,
            pruning_vars=self.pruning_vars,
            pruning_schedule=self.pruning_schedule,
            block_size=self.block_size,
            sparsity_m_by_n=self.sparsity_m_by_n,
            block_pooling_type=self.block_pooling_type)
