"""Data set sources: the public types a loader returns (base), the IDX format (idx), MNIST and
Fashion-MNIST from local files (mnist), NumPy archives (npz), image folders (folder) and prepared
tfds directories (tfds). The registry and the pipelines are in tfprune/data.py."""
