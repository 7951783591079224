"""run_on_pi.py of an IMX500 package (compilers/imx500.py copies this file into every package):
runs the package on a Raspberry Pi AI Camera and prints what the network says, frame by frame.
It needs the camera, so it is not run where the package was made; results() and describe(),
which turn the camera's output tensors into the model's outputs, run anywhere (the adapter's
tests feed them).

On the Pi, once:
    sudo apt install imx500-all imx500-tools python3-picamera2
    imx500-package -i packerOut.zip -o . -f input_format.json   # writes ./network.rpk
    pip install ai-edge-litert    # only for a package with a host tail (host_tail.tflite)
Then: python3 run_on_pi.py

pi_config.json beside it says what the sensor sends (its output tensors, in order), which
operators run on the Pi after it (host_tail.tflite, the original file's own operators, fed the
sensor's outputs quantized as the file quantizes them), the inference ROI and how to read the
outputs (a gaze scale, class labels)."""
import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def load_config(folder=HERE):
    return json.loads((pathlib.Path(folder) / "pi_config.json").read_text())


def _shaped(value, shape):
    """A camera output as the tensor shape the model gives it (batch left out): picamera2 hands
    each tensor over in the converter's dimension order, which may be the reverse."""
    value = np.asarray(value, np.float32)
    shape = tuple(shape)
    if value.shape == shape:
        return value
    if value.shape == shape[::-1]:
        return value.transpose()
    return value.reshape(shape)


def _stored(value, spec):
    """A float array as the host tail's input ``spec`` stores it (quantized into its integer type)."""
    dtype = np.dtype(spec["dtype"])
    if dtype.kind == "f":
        return value.astype(dtype)
    if spec["scale"] is not None:
        value = value / spec["scale"] + spec["zero_point"]
    info = np.iinfo(dtype)
    return np.clip(np.round(value), info.min, info.max).astype(dtype)


def _real(value, spec):
    if spec["scale"] is None:
        return value
    return (value.astype(np.float32) - spec["zero_point"]) * spec["scale"]


def tail_interpreter(config, folder=HERE):
    """LiteRT (or tflite-runtime) for the host tail; None for a package without one."""
    if not config["host_tail"]:
        return None
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(pathlib.Path(folder) / config["host_tail"]["file"]))
    interpreter.allocate_tensors()
    return interpreter


def results(config, outputs, tail=None):
    """{output name: array} of the model from the camera's ``outputs`` (one array per sensor output,
    in order): the sensor's own, and the host tail's run on them."""
    sent = {spec["name"]: _shaped(value, spec["shape"][1:])
            for spec, value in zip(config["sensor_outputs"], outputs)}
    values = dict(sent)
    if tail is not None:
        details = {d["name"]: d for d in tail.get_input_details()}
        for spec in config["host_tail"]["inputs"]:
            tail.set_tensor(details[spec["name"]]["index"], _stored(sent[spec["name"]][None], spec))
        tail.invoke()
        by_name = {d["name"]: d for d in tail.get_output_details()}
        for spec in config["host_tail"]["outputs"]:
            values[spec["name"]] = _real(tail.get_tensor(by_name[spec["name"]]["index"]), spec)[0]
    return {name: values[name] for name in config["outputs"]}


def describe(config, values):
    """One line for a frame: gaze in cm, the top classes, or each output's shape and first values."""
    first = next(iter(values.values()))
    if config["gaze_scale_cm"]:
        x_cm, y_cm = (np.ravel(first)[:2] * config["gaze_scale_cm"]).tolist()
        return f"gaze {x_cm:+.1f} cm right, {y_cm:+.1f} cm up of the camera"
    if config["task"] == "classification":
        scores = np.ravel(first)
        labels = config["labels"] or [str(i) for i in range(len(scores))]
        return ", ".join(f"{labels[i]} {scores[i]:.2f}" for i in np.argsort(scores)[::-1][:3])
    return "; ".join(f"{name} {list(np.shape(v))}: {np.ravel(v)[:4].round(3).tolist()}"
                     for name, v in values.items())


def main():
    from picamera2 import Picamera2
    from picamera2.devices import IMX500
    from picamera2.devices.imx500 import NetworkIntrinsics
    config = load_config()
    imx500 = IMX500(str(HERE / "network.rpk"))  # before Picamera2, as picamera2 requires
    intrinsics = imx500.network_intrinsics or NetworkIntrinsics(config["network_intrinsics"])
    intrinsics.update_with_defaults()
    tail = tail_interpreter(config)
    picam2 = Picamera2(imx500.camera_num)
    imx500.show_network_fw_progress_bar()
    picam2.start(picam2.create_preview_configuration(controls={"FrameRate": intrinsics.inference_rate}),
                 show_preview=False)
    imx500.set_inference_roi_abs(tuple(config["roi"]))
    while True:
        metadata = picam2.capture_metadata()
        outputs = imx500.get_outputs(metadata)  # dequantized float32, one array per output tensor
        if outputs:
            print(describe(config, results(config, outputs, tail)),
                  f"(inference ms: {imx500.get_kpi_info(metadata)})")


if __name__ == "__main__":
    main()
