"""Training defaults of `zoo build`, in one place for the command line and zoo.train.build (a module
without TensorFlow, so `zoo --help` stays instant). Chosen on the default rendered data so that
`zoo build tinytracker --qat` beats the mean predictor 3x within 10 minutes on 2 cores; the
measurements behind them are in BUILD_NOTES.md ("Training defaults")."""
EPOCHS = 12
QAT_EPOCHS = 2
BATCH_SIZE = 32
LEARNING_RATE = 3e-3  # Adam, cosine-decayed to 0 over the float epochs
# iTracker, as published, has no BatchNormalization: at 3e-3 the few steps it gets in the default
# comparison drove every output into the flat ends of its tanh (41 cm on the default data).
MODEL_LEARNING_RATES = {"itracker": 1e-3}
# QAT fine-tunes the converged float model, from calibrated ranges, starting at this fraction of
# the float learning rate (also cosine-decayed): TinyTracker's QAT int8 ends 0.024 cm from float.
QAT_LEARNING_RATE_FRACTION = 0.01


def learning_rate(model):
    """The default float learning rate of registered model ``model``."""
    return MODEL_LEARNING_RATES.get(model, LEARNING_RATE)
