"""What comes after pruning and before the int8 .tflite: quantization-aware training (QAT, and
on a pruned model pruning-preserving QAT), weight clustering (sparsity-preserving on a pruned
model) and cluster-preserving QAT (CQAT / PCQAT): tfmot's collaborative optimizations, as
stages (``stages.STAGES``) applied to a finished model by ``tfprune.pipeline.compress_model``.

- ``stages``: the stages' names and options, checkable without TensorFlow;
- ``weights``: the counts a stage is judged by (unique values, non-zeros), pure NumPy;
- ``clustering``, ``qat``: tfmot's wrappers, applied layer by layer where tfmot supports the
  layer, the others left as they are and named.
"""
