"""TFLite files in one place: reading the flatbuffer (reader.py), running it (runtime.py) and
writing it (writer.py). The package exposes their public names, so callers say
``from zoo import tflite; tflite.read_graph(path)``."""
from zoo.tflite.reader import (Graph, Operator, Tensor, describe, read_graph, read_metadata,  # noqa: F401
                               signature_names)
from zoo.tflite.runtime import RUNTIMES, io_details, load_delegate, make_interpreter, run_tflite  # noqa: F401
from zoo.tflite.writer import convert, converter_for, strip_internal_names, with_metadata  # noqa: F401
