"""`python compilers/imx500.py MODEL.tflite`: the command line of the imx500 target (compilers/imx500/)."""
import pathlib
import sys

# Run as a script, Python puts compilers/ first on sys.path; the repository root goes there instead,
# so that the package compilers.imx500 (not this file) is imported and no tool's own package is shadowed.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

from compilers.imx500 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
