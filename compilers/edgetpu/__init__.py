"""The Coral Edge TPU target: a pre-flight that predicts, in the compiler's own words, where every
operator runs (no compiler needed), and Google's edgetpu_compiler when it is installed.

Public names, the same for every target (compilers.targets): compile, read_report, main, Report;
beside them compiled_model(folder) and make_interpreter(path), the runtime apart from compilation
as in pycoral."""
from compilers.edgetpu.adapter import compile, main
from compilers.edgetpu.report import EdgeTpuReport, Report, compiled_model, read_report
from compilers.edgetpu.runtime import make_interpreter_on_tpu as make_interpreter

__all__ = ["compile", "read_report", "main", "Report", "EdgeTpuReport", "compiled_model", "make_interpreter"]
