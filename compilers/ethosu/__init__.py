"""The Arm Ethos-U target: any int8 TFLite compiled by Arm's Vela into the TFLite an Ethos-U55,
U65 or U85 NPU runs, with where every operator runs and why, the memory it takes and Vela's
performance estimate.

Public names, the same for every target (compilers.targets): compile, read_report, main, Report;
beside them compiled_model(folder), the NAME_vela.tflite a compile left there. This package is
compilers.ethosu; Vela's own package is the top-level ethosu (ethosu.vela), never shadowed by it."""
from compilers.ethosu.adapter import compile, main
from compilers.ethosu.report import EthosUReport, Report, compiled_model, read_report
from compilers.ethosu.vela_output import VelaFailed

__all__ = ["compile", "read_report", "main", "Report", "EthosUReport", "compiled_model", "VelaFailed"]
