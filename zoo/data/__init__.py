"""GazeCapture data: the reader of the real on-disk layout, the rendered offline dataset in the
same layout, and the tf.data pipeline that turns frames into each model's inputs."""
from zoo.data.gazecapture import (GazeCaptureIndex, format_stats, load_index, open_gazecapture,
                                  training_mean)
from zoo.data.pipeline import make_dataset
from zoo.data.render import DEFAULT_RENDER, default_data_root, render_dataset, render_settings

__all__ = ["DEFAULT_RENDER", "GazeCaptureIndex", "default_data_root", "format_stats", "load_index",
           "make_dataset", "open_gazecapture", "render_dataset", "render_settings", "training_mean"]
