"""Is gaze learnable from the rendered data? Trains a registered model for a fixed number of
steps (a few minutes of CPU) and compares its test error (cm) with the mean predictor's.

    .venv/bin/python benchmarks/learnability.py --model tinytracker_s --steps 1500

Prints the model's and the mean predictor's mean Euclidean error in cm on the test split
(overall, phones, tablets) and their ratio. Uses the default rendered dataset unless --data
names a GazeCapture root.
"""
import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "tinytracker_s", "registered model to train (zoo list)")
flags.DEFINE_string("data", None, "GazeCapture root; default: the rendered default dataset")
flags.DEFINE_integer("steps", 1500, "training batches")
flags.DEFINE_float("max_minutes", 30.0, "stop training early after this much wall-clock time")
flags.DEFINE_integer("batch_size", 32, "batch size")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate, cosine-decayed over --steps")
flags.DEFINE_integer("seed", 0, "random seed for weights, shuffling and augmentation")
flags.DEFINE_boolean("augment", True, "train with the pipeline's augmentation")
flags.DEFINE_string("split", "test", "split to evaluate on")


def main(argv):
    del argv
    import tensorflow as tf

    import zoo
    from zoo import data, metrics
    from zoo.eval import gaze_errors_of

    tf.keras.utils.set_random_seed(FLAGS.seed)
    root = FLAGS.data or data.default_data_root()
    model = zoo.create_model(FLAGS.model)
    specs = zoo.input_specs(FLAGS.model, model)
    train = data.make_dataset(root, specs, "train", FLAGS.batch_size, augment=FLAGS.augment, shuffle=True,
                              seed=FLAGS.seed)
    train = train.map(lambda x, y: (x, y / zoo.GAZE_SCALE_CM)).repeat()

    class TimeCap(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - started > FLAGS.max_minutes * 60:
                self.model.stop_training = True

    schedule = tf.keras.optimizers.schedules.CosineDecay(FLAGS.learning_rate, FLAGS.steps, alpha=0.05)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="mse")
    started, cpu_started = time.monotonic(), time.process_time()
    history = model.fit(train, steps_per_epoch=FLAGS.steps, epochs=1, callbacks=[TimeCap()], verbose=2)
    train_s, train_cpu_s = time.monotonic() - started, time.process_time() - cpu_started
    steps = model.optimizer.iterations.numpy()

    figures = gaze_errors_of({"model": lambda batch: model(batch, training=False).numpy()}, root, specs,
                             FLAGS.split)
    errors, baseline = figures["model"], figures[metrics.MEAN_BASELINE]

    def cm(value):
        return "   n/a" if value is None else f"{value:6.2f}"
    print(f"\n{FLAGS.model} on {root}: {steps} steps of {FLAGS.batch_size} in {train_s:.0f} s "
          f"({train_cpu_s:.0f} s CPU), final train loss {history.history['loss'][-1]:.4f}")
    print(f"{FLAGS.split} split, {errors['frames']} frames: error in cm (all / phone / tablet)")
    for label, row in (("model", errors), ("mean predictor", baseline)):
        print(f"  {label:15} {cm(row['cm'])} {cm(row['cm_phone'])} {cm(row['cm_tablet'])}")
    print(f"  mean predictor / model = {baseline['cm'] / errors['cm']:.2f}x")


if __name__ == "__main__":
    app.run(main)
