"""Where the IMX500 adapter's calibration and evaluation inputs come from (in the MCT child):
a GazeCapture root through the recipes training uses (labelled, so the package's gaze error is
measured), a folder of photos resized to each image input and scaled to its value range, or real
samples from an .npy/.npz (unlabelled: calibration and the checks only). Never random data.
compilers.imx500.calibration checked all of it in the parent."""
import pathlib

from compilers.imx500.calibration import MIN_SAMPLES
from zoo.data.images import image_files
from compilers.imx500.graph import split_inputs
from zoo.errors import UsageError

CHECK_INPUTS = MIN_SAMPLES  # the import check's inputs
BATCH = 16


def open_source(job, specs, sensor_specs):
    kind, path = job["data"]["kind"], job["data"]["path"]
    if kind == "gazecapture":
        return GazeSource(path, specs, sensor_specs, job["calibration_frames"])
    if kind == "arrays":
        return ArraySource(job["data"], specs, sensor_specs, job["calibration_frames"])
    return ImageSource(path, specs, sensor_specs, job["input_ranges"], job["calibration_frames"])


class GazeSource:
    """Frames of a GazeCapture root, made into each input by its recipe (zoo.data)."""
    labelled = True

    def __init__(self, root, specs, sensor_specs, frames):
        from zoo.data import load_index
        if any(spec.recipe is None for spec in specs):
            raise UsageError("a GazeCapture root as --calibration-data needs a recipe for each input; "
                             "pass --recipe (see --help)")
        self.root, self.specs, self.sensor_specs = pathlib.Path(root), specs, sensor_specs
        self.index = load_index(self.root)
        self.calibration_count = min(frames, self.index.split_counts()["train"])
        self.check_count = min(CHECK_INPUTS, self.index.split_counts()["train"])
        if not self.check_count:
            raise UsageError(f"{root} has no valid training frames to calibrate on; check the data with "
                             f"`zoo data stats {root}`")

    def describe(self):
        return f"GazeCapture root {self.root}, train split"

    def _dataset(self, specs, split, batch, limit=None, **options):
        from zoo.data import make_dataset
        return make_dataset(self.index, specs, split, batch, limit=limit, progress=False, **options)

    def check_inputs(self, specs=None):
        """The first training frames as one batch for ``specs`` (default: the model's own)."""
        specs = specs or self.specs
        batches = list(self._dataset(specs, "train", self.check_count, self.check_count).take(1))
        if not batches:  # the reader skips frames that do not decode: here, every one
            raise UsageError(f"no frame of the training split of {self.root} decodes as a JPEG; check the "
                             f"data with `zoo data stats {self.root}`")
        (inputs, _), = batches
        return {name: value.numpy() for name, value in inputs.items()}

    def calibration_batches(self):
        for inputs, _ in self._dataset(self.sensor_specs, "train", BATCH, self.calibration_count):
            yield [array.numpy() for array in split_inputs(inputs, self.sensor_specs)]

    def training_batches(self):
        from zoo import GAZE_SCALE_CM
        sensor = self.sensor_specs
        return self._dataset(sensor, "train", 32, shuffle=True, seed=0).map(
            lambda inputs, labels: (tuple(split_inputs(inputs, sensor)), labels / GAZE_SCALE_CM))

    def predict_cm(self, predictors, specs):
        from zoo.inference.evaluate import predict_cm
        return predict_cm(predictors, self.index, specs, "test")

    def median_face_grid(self):
        """The training split's median face grid, 0-indexed (column, row, width, height) cells."""
        import numpy as np
        return [int(v) for v in np.round(np.median(self.index.select("train").grid, axis=0))]


class ImageSource:
    """Photos from a folder, each resized to the input and scaled linearly from 0..255 to the
    input's value range. With fewer photos than inputs wanted, random crops and mirror images of
    them make up the rest (seeded, so a run is reproducible)."""
    labelled = False

    def __init__(self, folder, specs, sensor_specs, ranges, frames):
        self.folder, self.specs, self.sensor_specs = pathlib.Path(folder), specs, sensor_specs
        self.ranges = ranges
        self.calibration_count, self.check_count = max(frames, 1), CHECK_INPUTS
        self.paths = image_files(self.folder, max(self.calibration_count, self.check_count))

    def describe(self):
        return f"{len(self.paths)} images in {self.folder}" + (
            ", with random crops and mirror images" if len(self.paths) < self.calibration_count else "")

    def _arrays(self, count, seed, specs):
        import numpy as np
        from PIL import Image
        rng = np.random.default_rng(seed)
        images = [Image.open(path).convert("RGB") for path in self.paths]
        batch = {spec.name: [] for spec in specs}
        for number in range(count):
            image = images[number % len(images)]
            if number >= len(images):
                image = _random_view(image, rng)
            for spec in specs:
                low, high = self.ranges[spec.name]
                view = image.convert("L") if spec.shape[2] == 1 else image
                pixels = np.asarray(view.resize(spec.shape[1::-1], Image.BILINEAR), np.float32)
                batch[spec.name].append(low + pixels.reshape(spec.shape) / 255.0 * (high - low))
        return {name: np.stack(values) for name, values in batch.items()}

    def check_inputs(self, specs=None):
        return self._arrays(self.check_count, 1, specs or self.specs)

    def calibration_batches(self):
        arrays = self._arrays(self.calibration_count, 0, self.sensor_specs)
        for start in range(0, self.calibration_count, BATCH):
            yield split_inputs({name: value[start:start + BATCH] for name, value in arrays.items()},
                               self.sensor_specs)

    def training_batches(self):
        raise UsageError("--method qat needs labelled data: give a GazeCapture root as --calibration-data")


def _random_view(image, rng):
    """A random crop of 60-100% of the side, mirrored half the time."""
    from PIL import ImageOps
    side = rng.uniform(0.6, 1.0)
    width, height = image.size
    w, h = max(1, int(width * side)), max(1, int(height * side))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    view = image.crop((left, top, left + w, top + h))
    return ImageOps.mirror(view) if rng.random() < 0.5 else view


class ArraySource:
    """Real samples of every input from an .npy (one input) or .npz (arrays by input name; ``data``:
    the job's data record, whose "keys" say which array feeds which input), in their order: the
    first CHECK_INPUTS for the checks, up to the calibration count for MCT."""
    labelled = False

    def __init__(self, data, specs, sensor_specs, frames):
        import numpy as np
        self.path, self.specs, self.sensor_specs = pathlib.Path(data["path"]), specs, sensor_specs
        loaded = np.load(self.path, allow_pickle=False)
        keys = data["keys"]
        self.arrays = {spec.name: np.asarray(loaded if keys[spec.name] is None else loaded[keys[spec.name]],
                                             np.float32) for spec in specs}
        available = min(len(a) for a in self.arrays.values())
        self.calibration_count, self.check_count = min(frames, available), min(CHECK_INPUTS, available)

    def describe(self):
        return f"{self.calibration_count} samples from {self.path}"

    def check_inputs(self, specs=None):
        return {name: array[:self.check_count] for name, array in self.arrays.items()}

    def calibration_batches(self):
        for start in range(0, self.calibration_count, BATCH):
            stop = min(start + BATCH, self.calibration_count)
            yield [self.arrays[spec.name][start:stop] for spec in self.specs]

    def training_batches(self):
        raise UsageError("--method qat needs labelled data: give a GazeCapture root as --calibration-data")
