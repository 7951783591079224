"""Reading what Vela wrote: its summary CSV, its per-layer CSV and the reasons it prints for every
operator it leaves to the CPU. Every figure is Vela's own, only converted to bytes and seconds
where Vela writes KiB; a file that lacks what Vela 5.2's writes is a VelaFailed, not a guess."""
import csv
import itertools
import math
import pathlib
import re
import typing

from compilers.ethosu.report import Layer, Summary

AREAS = ("sram", "dram", "on_chip_flash", "off_chip_flash")  # Vela's memory-area column prefixes
CYCLES = ("npu", "sram_access", "dram_access", "on_chip_flash_access", "off_chip_flash_access", "total")
KIB = 1024
# Layer field <- Vela's per-layer CSV column (stats_writer.postprocess_regor_performance_database)
LAYER_COLUMNS = {
    "original_operator": "Original Operator", "operator": "NNG Operator", "target": "Target",
    "staging_usage_bytes": "Staging Usage", "staging_peak_percent": "Peak% (Staging)",
    "op_cycles": "Op Cycles", "network_cycles_percent": "Network% (cycles)", "npu_cycles": "NPU",
    "sram_access_cycles": "SRAM AC", "dram_access_cycles": "DRAM AC",
    "on_chip_flash_access_cycles": "OnFlash AC", "off_chip_flash_access_cycles": "OffFlash AC",
    "macs": "MAC Count", "network_macs_percent": "Network% (MAC)", "mac_utilization_percent": "Util% (MAC)",
    "name": "Name"}
_CPU_WARNING = re.compile(r"^Warning \(supported operators\) operator: (?P<op>\S+), ofm: '(?P<ofm>.*)'$")
_NOTE = re.compile(r"^(Warning|Info)\b")
_TABLE_RULE = "#" * 80  # the line before Vela's printed per-layer table (stats_writer)


class VelaFailed(Exception):
    """Vela itself failed (crashed, timed out, or wrote output this adapter cannot read): exit 1."""


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise VelaFailed(f"{where}: {text!r} is not a number") from None


def _whole(text: str, where: str) -> int:
    value = _number(text, where)
    if not math.isfinite(value) or value != int(value):
        raise VelaFailed(f"{where}: {text!r} is not a whole number")
    return int(value)


def _optional(text: str, where: str) -> typing.Optional[float]:
    value = _number(text, where)
    return value if math.isfinite(value) else None


def _row(path: pathlib.Path) -> typing.Dict[str, str]:
    try:
        rows = list(csv.DictReader(path.open(newline="")))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        raise VelaFailed(f"Vela's {path.name} is unreadable ({error})") from None
    if len(rows) != 1:
        raise VelaFailed(f"Vela's {path.name} holds {len(rows)} rows, not one")
    return rows[0]


def read_summary(path: pathlib.Path) -> Summary:
    """Vela's summary CSV (one network, one row) as a Summary."""
    row = _row(path)
    try:
        kib = {area: _number(row[f"{area}_memory_used"], path.name) for area in AREAS}
        return Summary(
            network=row["network"], accelerator=row["accelerator_configuration"],
            system_config=row["system_config"], memory_mode=row["memory_mode"],
            core_clock_hz=_number(row["core_clock"], path.name),
            arena_cache_size_bytes=round(_number(row["arena_cache_size"], path.name) * KIB),
            weights_storage_area=row["weights_storage_area"],
            feature_map_storage_area=row["feature_map_storage_area"],
            inference_time_s=_number(row["inference_time"], path.name),
            inferences_per_second=_optional(row["inferences_per_second"], path.name),
            memory_used_bytes={area: round(value * KIB) for area, value in kib.items()},
            cycles={kind: _whole(row[f"cycles_{kind}"], path.name) for kind in CYCLES},
            original_weights_bytes=_whole(row["total_original_weights"], path.name),
            npu_encoded_weights_bytes=_whole(row["total_npu_encoded_weights"], path.name),
            macs=_whole(row["nn_macs"], path.name),
            passes_before_fusing=_whole(row["passes_before_fusing"], path.name),
            passes_after_fusing=_whole(row["passes_after_fusing"], path.name))
    except KeyError as error:
        raise VelaFailed(f"Vela's {path.name} has no column {error}; this adapter reads Vela 5.2's") from None


def read_layers(path: pathlib.Path) -> typing.List[Layer]:
    """Vela's per-layer CSV as Layers, a run of identical rows as one with its ``repeat``. Vela
    joins the fields with commas without quoting them; the name (the last column) may hold
    commas, so each line is split only as often as there are other columns."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise VelaFailed(f"Vela's {path.name} is unreadable ({error})") from None
    header = lines[0].split(",") if lines else []
    if header[-1:] != [LAYER_COLUMNS["name"]] or set(LAYER_COLUMNS.values()) - set(header):
        raise VelaFailed(f"Vela's {path.name} lacks the columns {sorted(LAYER_COLUMNS.values())}; "
                         "this adapter reads Vela 5.2's")
    runs = [(line, len(list(group))) for line, group in itertools.groupby(line for line in lines[1:] if line)]
    rows = [(line.split(",", len(header) - 1), repeat) for line, repeat in runs]
    if any(len(values) != len(header) for values, _ in rows):
        raise VelaFailed(f"Vela's {path.name} has a row with fewer fields than its header")
    return [_layer(dict(zip(header, values)), repeat, path.name) for values, repeat in rows]


def _layer(row: typing.Dict[str, str], repeat: int, where: str) -> Layer:
    convert = {str: lambda text: text, int: lambda text: _whole(text, where),
               typing.Optional[float]: lambda text: _optional(text, where)}
    hints = typing.get_type_hints(Layer)
    return Layer(**{field: convert[hints[field]](row[column]) for field, column in LAYER_COLUMNS.items()},
                 repeat=repeat)


def cpu_reasons(output: str) -> typing.Dict[str, typing.Tuple[str, str]]:
    """{output tensor name: (TFLite operator, Vela's reason)} for every "Warning (supported
    operators)" block Vela printed: the header line, "Reason: ..." and the lines that explain it,
    up to the next blank line."""
    reasons: typing.Dict[str, typing.Tuple[str, str]] = {}
    lines = output.splitlines()
    for number, line in enumerate(lines):
        found = _CPU_WARNING.match(line.strip())
        if found:
            block = []
            for text in lines[number + 1:]:
                if not text.strip():
                    break
                block.append(text.strip())
            reason = " ".join(block)
            reasons[found["ofm"]] = (found["op"], reason.removeprefix("Reason: "))
    return reasons


def notes(output: str) -> typing.List[str]:
    """Vela's other warnings and notes, one line each (the per-operator blocks are cpu_reasons')."""
    return [line.strip() for line in output.splitlines()
            if _NOTE.match(line.strip()) and not _CPU_WARNING.match(line.strip())]


def log_text(output: str, per_layer_csv: str) -> str:
    """What Vela printed, for vela.log, with its printed per-layer table (a copy of
    ``per_layer_csv``, tens of MB for some models) replaced by the file's name."""
    kept, skipping = [], False
    for line in output.splitlines():
        if line.strip() == _TABLE_RULE:
            skipping = True
            kept.append(f"[Vela's per-layer table: see {per_layer_csv}]")
        elif skipping and not line.strip():
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"
