"""BUILD_NOTES ("IMX500: any public int8 TFLite", exact check): the exact import check on a zoo
build's int8 TFLite, fed 32 training frames of the build's own data through the adapter's own
source, as the MCT child does. For a build the adapter refuses before MCT (iTracker's grouped
convolution), this is how its import was checked.

    python experiments/imx500/exact_check_on_build.py BUILD [BUILD ...]
"""
import sys
import time

from compilers.imx500.data import GazeSource
from compilers.imx500.exact_check import exact_check
from compilers.imx500.graph import Spec
from compilers.imx500.importer import tflite_to_keras
from zoo import artifacts


def main(folders):
    for folder in folders:
        manifest = artifacts.read_build(folder)
        path = f"{folder}/{manifest.files['int8_tflite'].path}"
        specs = [Spec(i.name, i.recipe, tuple(i.shape)) for i in manifest.card.inputs]
        source = GazeSource(manifest.card.data.root, specs, specs, 200)
        started = time.monotonic()
        check = exact_check(path, source.check_inputs(), float_model=tflite_to_keras(path))
        print(folder, f"{time.monotonic() - started:.1f} s", check, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
