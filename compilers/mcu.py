"""`python compilers/mcu.py MODEL.tflite`: the command line of the mcu target (compilers/mcu/)."""
import pathlib
import sys

# Run as a script, Python puts compilers/ first on sys.path; the repository root goes there instead,
# so that the package compilers.mcu (not this file) is imported and no tool's own package is shadowed.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

from compilers.mcu import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
