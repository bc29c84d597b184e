"""TFLite: convert one Keras model (export), run and measure a .tflite on the LiteRT interpreter
(evaluate), and both for every requested variant of a model (measure)."""
