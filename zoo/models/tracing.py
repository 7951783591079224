"""How TensorFlow traces the zoo's Keras models: AutoGraph leaves Keras' own code alone.

TensorFlow 2.15's AutoGraph keeps a list of packages it never rewrites, and `keras` is on it, but
not `tf_keras` (the same Keras 2.15 code under the name tfmot needs) nor tfmot itself. So every
trace of a training step or of a model's call rewrote the source of Keras' training loop and
layers, which took most of a short build's time and changed nothing in the graph: the build's
files are byte-identical either way (BUILD_NOTES, "Tracing"). The zoo's own subclassed layers are
still converted: Keras asks AutoGraph for those itself.
"""

UNCONVERTED = ("tf_keras", "tensorflow_model_optimization")


def leave_keras_code_unconverted() -> None:
    """Adds tf_keras and tfmot to AutoGraph's packages not to rewrite (once per process)."""
    from tensorflow.python.autograph.core import config

    present = {rule._prefix for rule in config.CONVERSION_RULES if isinstance(rule, config.DoNotConvert)}
    added = tuple(config.DoNotConvert(name) for name in UNCONVERTED if name not in present)
    config.CONVERSION_RULES = (*added, *config.CONVERSION_RULES)
