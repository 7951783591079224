"""What the Raspberry Pi side of an IMX500 package needs, written beside packerOut.zip: the
input format imx500-package takes (-f input_format.json: the channel order the network was
calibrated on, RGB), the network intrinsics picamera2 reads (task, inference rate, input aspect
ratio, a classifier's labels), pi_config.json for run_on_pi.py (what the sensor sends, the host
tail, the ROI) and the report's deployment section."""
import dataclasses
import json
import math
import shutil

from compilers.imx500.records import AspectRatio, ClassLabels, DeploymentRecord, NetworkIntrinsics
from compilers.imx500.tools import SENSOR_PIXELS

PI_FILES = ("run_on_pi.py", "pi_config.json", "input_format.json", "network_intrinsics.json")
# picamera2's NetworkIntrinsics schema (picamera2/devices/imx500/imx500.py): these tasks only
TASKS = ("classification", "object detection", "pose estimation", "segmentation")
# The AI Camera's fastest sensor mode, 2028x1520 at 30 fps (Raspberry Pi AI Camera product brief)
SENSOR_FPS = 30.0


def infer_task(graph):
    """classification for one [1, classes] output, segmentation for an arg max over a map; else
    None (picamera2 then has no task, and run_on_pi.py prints the outputs)."""
    shapes = [graph.tensors[i].shape for i in graph.outputs]
    if len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][1] > 2:
        return "classification"
    makes = {o: op.name for op in graph.operators for o in op.outputs}
    if len(shapes) == 1 and len(shapes[0]) == 3 and makes.get(graph.outputs[0]) in ("ARG_MAX", "ARG_MIN"):
        return "segmentation"
    return None


def intrinsics(graph, task, labels, performance) -> NetworkIntrinsics:
    """picamera2's network intrinsics: the task, the inference rate where a latency supports one
    (no more than the sensor's 30 fps), the input's aspect ratio, a classifier's labels."""
    _, height, width = graph.tensors[graph.inputs[0]].shape[:3]
    divisor = math.gcd(width, height)
    return NetworkIntrinsics(
        input_aspect_ratio=AspectRatio(width=width // divisor, height=height // divisor), task=task or None,
        inference_rate=round(min(SENSOR_FPS, performance.fps), 1) if performance.fps else None,
        classes=ClassLabels(labels=list(labels)) if labels else None)


def _tensor(graph, index, name=None):
    tensor = graph.tensors[index]
    return {"name": name or tensor.name, "shape": list(tensor.shape)}


def pi_config(graph, part, record: DeploymentRecord) -> dict:
    """pi_config.json for run_on_pi.py: the deployment section's roi, gaze_scale_cm, task, labels,
    network intrinsics and host tail (its file and tensors), the sensor's and the file's outputs."""
    tail = record.host_tail
    return {"roi": record.roi, "gaze_scale_cm": record.gaze_scale_cm, "task": record.task,
            "labels": record.labels, "network_intrinsics": record.network_intrinsics.for_picamera2(),
            "sensor_outputs": [_tensor(graph, i) for i in part.sensor_outputs],
            "host_tail": tail and {"file": tail.file, "inputs": [dataclasses.asdict(t) for t in tail.inputs],
                                   "outputs": [dataclasses.asdict(t) for t in tail.outputs]},
            "outputs": [graph.tensors[i].name for i in graph.outputs]}


def write_pi_files(folder, config, inputs):
    """run_on_pi.py (compilers/imx500/pi_runner.py), pi_config.json, input_format.json and
    network_intrinsics.json into ``folder``; their paths. ``inputs``: the package's input tensors
    (dnnParams.xml): RGB for each of three channels, the channel order every input was calibrated
    on (photos and frames are RGB; a grey input converts RGB inside the network); another input
    has no entry (the sensor cannot feed it)."""
    from compilers.imx500 import pi_runner
    shutil.copyfile(pi_runner.__file__, folder / "run_on_pi.py")
    (folder / "pi_config.json").write_text(json.dumps(config, indent=2))
    formats = [{"ordinal": ordinal, "format": "RGB"} for ordinal, tensor in enumerate(inputs)
               if tensor.shape[-1:] == [3]]
    (folder / "input_format.json").write_text(json.dumps(formats, indent=2))
    (folder / "network_intrinsics.json").write_text(json.dumps(config["network_intrinsics"], indent=2))
    return [folder / name for name in PI_FILES]


def sensor_roi(face_grid, size=None):
    """picamera2's inference ROI in full-sensor pixels (left, top, width, height): the face grid
    (cells of the 25x25 grid over the frame) of a face-grid model, else the largest centred
    rectangle of the input's ``size`` (width, height) aspect ratio, so the ISP does not stretch
    the image (what picamera2's set_inference_aspect_ratio does)."""
    if face_grid:
        from zoo.data.gazecapture import GRID_CELLS
        column, row, width, height = face_grid
        scale_x, scale_y = SENSOR_PIXELS[0] / GRID_CELLS, SENSOR_PIXELS[1] / GRID_CELLS
        return [round(v * s) for v, s in zip((column, row, width, height), (scale_x, scale_y) * 2)]
    sensor_w, sensor_h = SENSOR_PIXELS
    width, height = size or SENSOR_PIXELS
    scale = min(sensor_w / width, sensor_h / height)
    roi_w, roi_h = int(width * scale), int(height * scale)
    return [(sensor_w - roi_w) // 2, (sensor_h - roi_h) // 2, roi_w, roi_h]
