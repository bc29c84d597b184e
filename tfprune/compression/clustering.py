"""Weight clustering, tfmot's: each clustered kernel's weights shared among ``clusters`` values
(Han et al.'s weight sharing), applied layer by layer.

tfmot's ``cluster_weights`` on a whole model fails on the first layer its registry does not
know; here each layer it supports and that has more weights than clusters is wrapped
(``plan``), every other layer is kept as it is and named with the reason, and a model with
nothing to cluster is refused in one line. On a pruned model ``preserve_sparsity`` keeps the
zero as a centroid of its own and the pruned weights at zero.
"""

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.pruning.surgery import fresh_copy

# tfmot's names of the starting centroids (stages.CENTROIDS).
_CENTROIDS = {"kmeans++": "KMEANS_PLUS_PLUS", "density": "DENSITY_BASED", "linear": "LINEAR",
              "random": "RANDOM"}


def _tfmot():
    import tensorflow_model_optimization as tfmot
    return tfmot


def _registry():
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry
    return clustering_registry.ClusteringRegistry


def _weights(layer):
    return int(sum(int(w.shape.num_elements() or 0) for w in layer.trainable_weights))


def plan(model, clusters):
    """(names of the layers to cluster, {layer: why it is kept as it is}). A layer is clustered
    when tfmot's registry supports it, it has trainable weights its registry clusters, and it
    has more of them than ``clusters``."""
    registry, wrap, kept = _registry(), [], {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or not layer.trainable_weights:
            continue
        if isinstance(layer, keras.Model):
            kept[layer.name] = "a nested model (tfmot clusters the layers of one model)"
        elif isinstance(layer, keras.layers.MultiHeadAttention):
            kept[layer.name] = ("tfmot 0.8.1's MultiHeadAttention wrapper fails with this "
                                "tf_keras (KeyError when it is built)")
        elif not registry.supports(layer):
            kept[layer.name] = f"tfmot cannot cluster {type(layer).__name__} layers"
        elif not registry._weight_names(layer):
            kept[layer.name] = f"tfmot clusters no weight of {type(layer).__name__} layers"
        elif _weights(layer) <= clusters:
            kept[layer.name] = f"{_weights(layer)} weights, not more than {clusters} clusters"
        else:
            wrap.append(layer.name)
    return wrap, kept


def check(model, clusters):
    """The plan, or a one-line error when no layer can be clustered into ``clusters``."""
    wrap, kept = plan(model, clusters)
    if not wrap:
        largest = max((_weights(layer) for layer in model.layers if layer.name in kept
                       and kept[layer.name].endswith(f"not more than {clusters} clusters")),
                      default=0)
        raise TfpruneError(
            f"`clusters` must be fewer than the weights of a layer tfmot can cluster (Dense, "
            f"Conv, Embedding: the largest here has {largest}), got "
            f"{clusters}" if largest else
            f"nothing to cluster: no layer of the model is one tfmot clusters (Dense, Conv, "
            f"Embedding); kept: "
            f"{'; '.join(f'{k}: {v}' for k, v in kept.items()) or 'no weighted layer'}")
    return wrap, kept


def cluster(model, clusters, centroids="kmeans++", preserve_sparsity=False):
    """A copy of ``model`` with the planned layers wrapped by tfmot's ClusterWeights; (copy,
    clustered layer names, {kept layer: reason}). A layer tfmot fails to wrap is kept, with
    the error."""
    tfmot = _tfmot()
    wrap, kept = check(model, clusters)
    init = getattr(tfmot.clustering.keras.CentroidInitialization, _CENTROIDS[centroids])
    chosen, wrapped = set(wrap), []
    own = fresh_copy(model)  # its layers, trained weights and all, go into the wrapped model

    def clone(layer):
        if layer.name not in chosen:
            return layer  # as tfmot does: the layer itself, its weights kept
        try:  # the centroids start from the layer's trained weights
            result = tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=clusters, cluster_centroids_init=init,
                preserve_sparsity=preserve_sparsity)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            kept[layer.name] = f"tfmot failed to wrap it ({type(error).__name__}: " \
                f"{(str(error).splitlines() or [''])[0][:120]})"
            return layer
        wrapped.append(layer.name)
        return result

    try:  # a wrapper that fails when it is built fails here
        copy = keras.models.clone_model(own, clone_function=clone)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise TfpruneError(f"tfmot cannot cluster this model: {type(error).__name__}: "
                           f"{(str(error).splitlines() or [''])[0][:200]} (the layers it "
                           f"would cluster: {', '.join(wrapped)})") from None
    if not wrapped:
        raise TfpruneError(f"nothing to cluster: tfmot failed to wrap every layer it should "
                           f"cluster; {'; '.join(f'{k}: {kept[k]}' for k in wrap)}")
    return copy, [name for name in wrap if name in wrapped], kept


def strip(model):
    """The clustered model as plain layers holding the clustered weights."""
    return _tfmot().clustering.keras.strip_clustering(model)

