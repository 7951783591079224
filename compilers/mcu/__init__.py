"""The microcontroller target (TFLite Micro): the measured tensor arena, the model as a C array,
the exact op resolver, the fit on a table of boards, and TFLite Micro's outputs against LiteRT's.

Public names, the same for every target (compilers.targets): compile, read_report, main, Report."""
from compilers.mcu.adapter import compile, main
from compilers.mcu.report import McuReport, Report, read_report

__all__ = ["compile", "read_report", "main", "Report", "McuReport"]
