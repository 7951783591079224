"""The Sony IMX500 target (Raspberry Pi AI Camera): any int8 TFLite split between the sensor and
the Pi (partition.py: post-processing the toolchain cannot take runs on the Pi from
host_tail.tflite), the sensor's part imported as a float Keras model (importer.py, ops/) and
checked operator by operator against LiteRT (exact_check.py), quantized by Sony's MCT for the
IMX500 (child.py and quantize.py, in a process without tfmot) and converted by imxconv-tf
(tools.py), with the files the Pi needs (deployment.py, pi_runner.py).

Public names, the same for every target (compilers.targets): compile, read_report, main, Report."""
from compilers.imx500.adapter import compile, main
from compilers.imx500.report import Imx500Report, MemoryRecord, Report, read_report
from compilers.imx500.tools import CompileError

# What a package holds, made here or by imx500-package on the Pi, with or without the marker of
# this project: no command replaces a folder that holds one (zoo.plugins, entry point zoo.packages).
PACKAGE_FILES = ("*.rpk", "packerOut.zip")

__all__ = ["compile", "read_report", "main", "Report", "Imx500Report", "MemoryRecord", "CompileError"]
