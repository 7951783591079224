"""Is gaze learnable from the rendered data? Trains a registered model for a fixed number of
steps (a few minutes of CPU) and compares its test error (cm) with the mean predictor's.

    .venv/bin/python benchmarks/learnability.py --model tinytracker_s --steps 1500

Prints the model's and the mean predictor's mean Euclidean error in cm on the test split
(overall, phones, tablets) and their ratio. Uses the default rendered dataset unless --data
names a GazeCapture root. Every flag and --data are checked before TensorFlow is imported.
"""
import os
import pathlib
import time

from absl import flags

import benchmarks
from zoo.errors import UsageError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STEPS = 1500  # --steps' default here
FLAGS = flags.FLAGS
flags.DEFINE_string("model", "tinytracker_s", "registered model to train (zoo list)")
flags.DEFINE_float("max_minutes", 30.0, "stop training early after this much wall-clock time",
                   lower_bound=0.01)
flags.DEFINE_integer("batch_size", 32, "batch size", lower_bound=1)
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate, cosine-decayed over --steps")
flags.DEFINE_integer("seed", 0, "random seed for weights, shuffling and augmentation", lower_bound=0,
                     upper_bound=2**32 - 1)
flags.DEFINE_boolean("augment", True, "train with the pipeline's augmentation")
flags.DEFINE_enum("split", "test", ["train", "val", "test"], "split to evaluate on")
flags.register_validator("learning_rate", lambda rate: rate > 0, "--learning_rate must be positive")
for _name in ("data", "steps"):
    flags.declare_key_flag(_name)


def _check_inputs(argv):
    """The data root, once the arguments are known good (the model name imports TensorFlow)."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}; this app takes flags only")
    from zoo import data
    if FLAGS.data:
        from zoo.data.gazecapture import check_root
        check_root(pathlib.Path(FLAGS.data).absolute())
    root = FLAGS.data or data.default_data_root()
    data.open_gazecapture(root)
    import zoo
    zoo.get_entry(FLAGS.model)
    return root


def main(argv):
    root = _check_inputs(argv)
    steps = FLAGS.steps or STEPS
    import tensorflow as tf

    import zoo
    from zoo import data
    from zoo.inference import metrics
    from zoo.inference.evaluate import gaze_errors_of

    tf.keras.utils.set_random_seed(FLAGS.seed)
    model = zoo.create_model(FLAGS.model)
    specs = zoo.input_specs(FLAGS.model, model)
    train = data.make_dataset(root, specs, "train", FLAGS.batch_size, augment=FLAGS.augment, shuffle=True,
                              seed=FLAGS.seed)
    train = train.map(lambda x, y: (x, y / zoo.GAZE_SCALE_CM)).repeat()

    class TimeCap(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - started > FLAGS.max_minutes * 60:
                self.model.stop_training = True

    schedule = tf.keras.optimizers.schedules.CosineDecay(FLAGS.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="mse")
    started, cpu_started = time.monotonic(), time.process_time()
    history = model.fit(train, steps_per_epoch=steps, epochs=1, callbacks=[TimeCap()], verbose=2)
    train_s, train_cpu_s = time.monotonic() - started, time.process_time() - cpu_started
    steps = model.optimizer.iterations.numpy()

    figures = gaze_errors_of({"model": lambda batch: model(batch, training=False).numpy()}, root, specs,
                             FLAGS.split)
    errors, baseline = figures["model"], figures[metrics.MEAN_BASELINE]

    def cm(value):
        return "   n/a" if value is None else f"{value:6.2f}"
    print(f"\n{FLAGS.model} on {root}: {steps} steps of {FLAGS.batch_size} in {train_s:.0f} s "
          f"({train_cpu_s:.0f} s CPU), final train loss {history.history['loss'][-1]:.4f}")
    print(f"{FLAGS.split} split, {errors.frames} frames: error in cm (all / phone / tablet)")
    for label, row in (("model", errors), ("mean predictor", baseline)):
        print(f"  {label:15} {cm(row.cm)} {cm(row.cm_phone)} {cm(row.cm_tablet)}")
    print(f"  mean predictor / model = {baseline.cm / errors.cm:.2f}x")


if __name__ == "__main__":
    benchmarks.run(main)
