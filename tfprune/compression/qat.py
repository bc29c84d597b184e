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

import re

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.pruning.surgery import fresh_copy


def scheme(preserve_sparsity=False, clustered=False):
    """tfmot's quantize scheme for a model that is pruned and / or clustered already, its
    registry checked (``_Checked``)."""
    return _CheckedScheme(_scheme(preserve_sparsity, clustered))


class _CheckedRegistry:
    """A scheme's registry that supports a layer only where it can also make its quantize
    config: the prune-preserving registry says it supports a Resizing and then raises when
    quantize_apply asks for the config of its output."""

    def __init__(self, registry):
        self._registry = registry

    def supports(self, layer):
        return _configured(self._registry, layer)

    def __getattr__(self, name):
        return getattr(self._registry, name)


class _CheckedScheme:
    def __init__(self, inner):
        self._inner = inner

    def get_quantize_registry(self):
        return _CheckedRegistry(self._inner.get_quantize_registry())

    def get_layout_transformer(self):
        return self._inner.get_layout_transformer()


def _scheme(preserve_sparsity, clustered):
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
    registry supports and gives a quantize config, and every BatchNormalization (tfmot's
    transforms fold it into the convolution before it; one they cannot fold is dropped by
    ``quantize_aware``); every other layer stays float, named."""
    registry = quantize_scheme.get_quantize_registry()._registry
    annotate, kept = [], {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            kept[layer.name] = "a nested model (tfmot quantizes the layers of one model)"
        elif isinstance(layer, keras.layers.BatchNormalization) or _configured(registry, layer):
            annotate.append(layer.name)
        else:
            kept[layer.name] = f"tfmot's 8-bit scheme has no quantization for " \
                f"{type(layer).__name__} layers"
    return annotate, kept


def _configured(registry, layer):
    """The registry supports the layer and can make its quantize config (the prune-preserving
    registry says it supports layers it then has no config for)."""
    try:
        return bool(registry.supports(layer) and registry.get_quantize_config(layer))
    except (ValueError, KeyError, TypeError, RuntimeError):
        return False


def check(model, quantize_scheme):
    """The plan, or a one-line error when no layer with weights can be quantized."""
    annotate, kept = plan(model, quantize_scheme)
    weighted = [name for name in annotate if model.get_layer(name).weights and not isinstance(
        model.get_layer(name), keras.layers.BatchNormalization)]
    if not weighted:
        named = "; ".join(f"{k}: {v}" for k, v in kept.items() if model.get_layer(k).weights)
        raise TfpruneError(
            "quantization-aware training needs a layer with weights that tfmot can quantize "
            "(Dense, Conv1D/2D, DepthwiseConv2D, SeparableConv, ...); "
            + (f"none here: {named}" if named else "the model has no weighted layer"))
    return annotate, kept


# tfmot's words for an annotated layer it has no quantize config for after its transforms.
_UNSUPPORTED = re.compile(r"^Layer (?P<name>[^:]+):<class '(?P<cls>[^']+)'> is not supported")


def quantize_aware(model, quantize_scheme):
    """(the quantization-aware copy of ``model``, annotated layer names, {float layer: why}).
    A layer tfmot rejects once its transforms have run (a BatchNormalization with no
    convolution before it) is left float, named, and the model quantized again."""
    import tensorflow_model_optimization as tfmot
    annotate, kept = check(model, quantize_scheme)
    qk = tfmot.quantization.keras
    own = fresh_copy(model)
    for _ in range(len(annotate) + 1):
        chosen = set(annotate)
        annotated = keras.models.clone_model(own, clone_function=lambda layer: (
            qk.quantize_annotate_layer(layer) if layer.name in chosen else layer))
        try:
            with qk.quantize_scope():
                return qk.quantize_apply(annotated, quantize_scheme), annotate, kept
        except RuntimeError as error:
            found = _UNSUPPORTED.match(str(error))
            if not found or found["name"] not in chosen:
                raise TfpruneError(f"tfmot cannot quantize this model for quantization-aware "
                                   f"training: {_first_line(error)}") from None
            annotate = [name for name in annotate if name != found["name"]]
            kept[found["name"]] = (f"tfmot's 8-bit scheme has no quantization for "
                                   f"{found['cls'].rsplit('.', 1)[-1]} layers here")
        except (ValueError, TypeError, KeyError) as error:
            raise TfpruneError(f"tfmot cannot quantize this model for quantization-aware "
                               f"training: {_first_line(error)}") from None
    raise TfpruneError("tfmot cannot quantize this model for quantization-aware training")


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
