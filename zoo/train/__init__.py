"""Training: `zoo build` (build.py) with its defaults, tf.distribute strategies (distribute.py),
quantization-aware training (qat.py) and the model card the build embeds in every TFLite (card.py)."""
