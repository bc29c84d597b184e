"""Quantization-aware training, tfmot's, applied layer by layer: a copy of the model whose
supported layers are annotated and then quantized by one of tfmot's 8-bit schemes, so that
training sees int8 rounding and the converter makes a full-integer int8 .tflite from it.

The scheme follows what the model already is (``scheme``): plain 8-bit QAT; on a pruned model
pruning-preserving (PQAT: its zeros stay zeros); on a clustered one cluster-preserving (CQAT:
its shared values stay shared), and on one that is both, PCQAT. tfmot's ``quantize_model``
fails on the first layer its registry does not know; here such layers stay float (the
converter quantizes them from the representative sample) and are named, and a model with
nothing tfmot can quantize is refused in one line.
"""

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.pruning.surgery import fresh_copy


def scheme(preserve_sparsity=False, clustered=False):
    """tfmot's quantize scheme for a model that is pruned and / or clustered already."""
    if clustered:
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.\
            cluster_preserve.default_8bit_cluster_preserve_quantize_scheme import \
            Default8BitClusterPreserveQuantizeScheme
        return Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve_sparsity)
    if preserve_sparsity:
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.\
            prune_preserve.default_8bit_prune_preserve_quantize_scheme import \
            Default8BitPrunePreserveQuantizeScheme
        return Default8BitPrunePreserveQuantizeScheme()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import \
        default_8bit_quantize_scheme
    return default_8bit_quantize_scheme.Default8BitQuantizeScheme()


def plan(model, quantize_scheme):
    """(names of the layers to annotate, {layer: why it stays float}): the layers the scheme's
    registry supports, every other layer with weights or computation named."""
    registry = quantize_scheme.get_quantize_registry()
    annotate, kept = [], {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            kept[layer.name] = "a nested model (tfmot quantizes the layers of one model)"
        elif registry.supports(layer):
            annotate.append(layer.name)
        else:
            kept[layer.name] = f"tfmot's 8-bit scheme has no quantization for " \
                f"{type(layer).__name__} layers"
    return annotate, kept


def check(model, quantize_scheme):
    """The plan, or a one-line error when no layer with weights can be quantized."""
    annotate, kept = plan(model, quantize_scheme)
    weighted = [name for name in annotate if model.get_layer(name).weights]
    if not weighted:
        named = "; ".join(f"{k}: {v}" for k, v in kept.items() if model.get_layer(k).weights)
        raise TfpruneError(
            "quantization-aware training needs a layer with weights that tfmot can quantize "
            "(Dense, Conv1D/2D, DepthwiseConv2D, SeparableConv, ...); "
            + (f"none here: {named}" if named else "the model has no weighted layer"))
    return annotate, kept


def quantize_aware(model, quantize_scheme):
    """(the quantization-aware copy of ``model``, annotated layer names, {float layer: why})."""
    import tensorflow_model_optimization as tfmot
    annotate, kept = check(model, quantize_scheme)
    chosen = set(annotate)
    own = fresh_copy(model)
    qk = tfmot.quantization.keras

    def clone(layer):
        return qk.quantize_annotate_layer(layer) if layer.name in chosen else layer

    annotated = keras.models.clone_model(own, clone_function=clone)
    try:
        with qk.quantize_scope():
            quantized = qk.quantize_apply(annotated, quantize_scheme)
    except (ValueError, TypeError, KeyError, RuntimeError) as error:
        raise TfpruneError(f"tfmot cannot quantize this model for quantization-aware "
                           f"training: {str(error).splitlines()[0] if str(error) else error!r}"
                           ) from None
    return quantized, annotate, kept
