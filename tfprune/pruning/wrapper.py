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

Two more things tfmot's wrapper cannot do: call a layer that takes more than one positional
input (a MultiHeadAttention is called as ``attention(query, value)``; tfmot's ``call(inputs,
training)`` would take the value for ``training``), and build an m:n mask for a kernel of rank 3
(an attention projection, a Conv1D). Here the further inputs are passed to the layer by their
names, and an m:n mask is built on the kernel seen as its (inputs, outputs) matrix
(kernels.as_matrix), tfmot's own rule on that matrix.
"""

import inspect

from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl, pruning_wrapper
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils

from tfprune.keras import tf
from tfprune.pruning import kernels


TfmotPruneLowMagnitude = pruning_wrapper.PruneLowMagnitude


def stored_variable(variable):
    """The variable that holds the value: under an AutoCastVariable (mixed precision) the
    float32 variable it wraps (under a tf.distribute strategy, the distributed variable);
    any other variable itself."""
    return getattr(variable, "_variable", variable) if hasattr(variable, "true_dtype") \
        else variable


def m_by_n_mask(weights, m_by_n, input_axes):
    """tfmot's m:n mask of ``weights`` (a tensor whose ``input_axes`` leading axes are its
    inputs): the m smallest magnitudes of every n consecutive inputs zeroed."""
    weights = tf.convert_to_tensor(weights)
    matrix = kernels.as_matrix(weights.shape, input_axes)
    flat = weights if matrix is None else tf.reshape(weights, matrix)
    mask = pruning_utils.generate_m_by_n_mask(pruning_utils.weights_rearrange(flat),
                                              tuple(m_by_n))
    mask = pruning_utils.m_by_n_sparsity_mask_prepare(mask, flat.shape)
    return mask if matrix is None else tf.reshape(mask, weights.shape)


class Pruning(pruning_impl.Pruning):
    """tfmot's Pruning whose m:n masks take kernels of any rank (m_by_n_mask)."""

    def __init__(self, *args, input_axes=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._input_axes = input_axes or {}

    def _update_mask_sparsity_m_by_n(self, weights, m_by_n=(2, 4)):
        axes = self._input_axes.get(weights.ref(), len(weights.shape) - 1)
        return tf.cast(m_by_n_mask(weights, m_by_n, axes), weights.dtype)


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

    def call(self, inputs, *args, **kwargs):
        # ``training`` stays in **kwargs: named in the signature after *args, Keras would take
        # the second positional input for it (its call spec zips argument names with the
        # positional inputs) and never pass the fit loop's training=True.
        training = kwargs.pop("training", None)
        if args:  # further positional inputs (an attention's value), passed by their names
            named = inspect.signature(self.layer.call).bind_partial(inputs, *args).arguments
            kwargs.update(list(named.items())[1:])
        return super().call(inputs, training=training, **kwargs)

    def make_pruning_obj(self):
        """The object that updates and applies the masks (tfmot's, over ``pruning_vars``)."""
        input_axes = {stored_variable(weight).ref(): axes
                      for weight, axes in (kernels.pruned_weights(self.layer)
                                           if kernels.is_weight_prunable(self.layer) else ())}
        return Pruning(
            input_axes=input_axes,
            training_step_fn=lambda: self.pruning_step,
            pruning_vars=self.pruning_vars,
            pruning_schedule=self.pruning_schedule,
            block_size=self.block_size,
            sparsity_m_by_n=self.sparsity_m_by_n,
            block_pooling_type=self.block_pooling_type)
