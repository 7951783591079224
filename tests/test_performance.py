"""The performance sections of the Edge TPU and IMX500 reports (issue 21, item 3): the published
figures they rest on are cited, the Edge TPU fit's leave-one-out error is what an independent
computation on the same table gives, the costs of the published models the repository holds are
what their files say, and each estimate applies only where its basis does."""
import dataclasses
import os

import numpy as np
import pytest

from compilers.edgetpu import published
from conftest import SHARED
from hostile import run_command

REFERENCE = SHARED / "edgetpu" / "reference-models"


def _reference(name):
    """A public model from ../shared; missing, the test fails under CI and is skipped elsewhere."""
    path = REFERENCE / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: the shared reference models must be present in CI")
        pytest.skip(f"{path} is absent")
    return path


def test_every_published_edgetpu_latency_has_its_source_and_the_basis_of_its_costs():
    assert len(published.PUBLISHED) >= 5
    for row in published.PUBLISHED:
        assert row.latency_ms > 0 and "https://" in row.latency_source, row
        assert row.tpu_macs > 0 and row.cpu_elements >= 0 and row.param_bytes > 0, row
        if row.reference_file:
            assert row.costs_source == published.COMPUTED, row
        else:  # cited, and what the source does not say is said, with its basis
            assert "https://" in row.costs_source and "[inferred]" in row.note, row
    assert len({row.model for row in published.PUBLISHED}) == len(published.PUBLISHED)


def _independent_loo(rows):
    """Leave-one-out relative errors of latency = c0 + c1 GMACs + c2 M CPU elements, each fit
    minimising the squared relative error through its normal equations."""
    x = np.array([[1.0, r.tpu_macs / 1e9, r.cpu_elements / 1e6] for r in rows])
    y = np.array([r.latency_ms for r in rows])
    errors = []
    for held_out in range(len(rows)):
        keep = np.arange(len(rows)) != held_out
        a = x[keep] / y[keep, None]
        coefficients = np.linalg.solve(a.T @ a, a.T @ np.ones(keep.sum()))
        errors.append(x[held_out] @ coefficients / y[held_out] - 1)
    return errors


def test_the_leave_one_out_error_is_what_an_independent_computation_gives():
    from compilers.edgetpu import performance
    fit = performance.published_fit()
    expected = _independent_loo(published.PUBLISHED)
    assert fit.loo_errors == pytest.approx(expected, abs=1e-9)
    assert all(c > 0 for c in fit.coefficients)  # a cost per inference, per MAC and per element
    errors = np.abs(expected)
    assert f"median {np.median(errors):.0%}, largest {errors.max():.0%}" in fit.loo_summary
    table = performance.describe_fit()
    assert all(row.model in table for row in published.PUBLISHED)


@pytest.mark.parametrize("row", [r for r in published.PUBLISHED if r.reference_file],
                         ids=lambda r: r.reference_file)
def test_costs_in_the_table_are_what_the_public_model_files_give(row):
    from compilers.edgetpu import performance, preflight
    from zoo import tflite
    graph = tflite.read_graph(_reference(row.reference_file))
    checked = preflight.preflight(graph)
    assert tuple(graph.tensors[graph.inputs[0]].shape[1:]) == row.input_size
    assert performance.features(graph, checked) == performance.Features(row.tpu_macs, row.cpu_elements)
    assert checked.param_bytes == row.param_bytes


def test_the_mac_count_agrees_with_the_published_count_of_a_model_no_one_here_wrote():
    """TensorFlow-Slim's mobilenet_v1.md: MobileNet_v1_0.25_128, 14 million MACs, 0.47 million parameters."""
    from compilers import costs
    from zoo import tflite
    graph = tflite.read_graph(_reference("mobilenet_v1_0.25_128_quant.tflite"))
    assert costs.graph_macs(graph) == pytest.approx(14e6, rel=0.05)
    weights = sum(int(np.prod(graph.tensors[op.inputs[1]].shape)) for op in graph.operators
                  if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    assert weights == pytest.approx(0.47e6, rel=0.02)


def test_the_edgetpu_report_carries_the_estimate_with_its_basis(tmp_path, capsys):
    from compilers import edgetpu
    from compilers.edgetpu import performance
    model = _reference("mobilenet_v1_0.25_128_quant.tflite")
    assert run_command("edgetpu", [str(model), "-o", str(tmp_path / "out"), "--preflight-only"]) == 3
    section = edgetpu.read_report(tmp_path / "out").headline.performance
    fit = performance.published_fit()
    assert section.kind == "estimated"
    assert section.latency_ms == pytest.approx(fit.coefficients[0] + fit.coefficients[1] * 13_570_304 / 1e9,
                                               abs=1e-4)
    assert section.fps == pytest.approx(1000 / section.latency_ms, rel=1e-3)
    assert fit.loo_summary in section.basis and "published.py" in section.basis
    assert any("coral.ai/docs/edgetpu/benchmarks" in citation for citation in section.citations)
    assert f"{section.latency_ms:.3g} ms" in capsys.readouterr().out


def test_no_edgetpu_estimate_where_the_fit_has_no_basis():
    from compilers.edgetpu import performance, preflight
    from zoo import tflite
    graph = tflite.read_graph(_reference("mobilenet_v1_0.25_128_quant.tflite"))
    checked = preflight.preflight(graph)
    for change, words in (({"param_bytes_streamed": 9 * 2**20}, "stream from host memory"),
                          ({"ops_on_tpu": 0}, "no operator on the Edge TPU"),
                          ({"problems": ["compiler 16 reads CONV_2D up to version 5"]}, "refuses")):
        section = performance.estimate(graph, dataclasses.replace(checked, **change))
        assert section.kind == "none" and section.latency_ms is None and words in section.basis
        assert "benchmarks.latency" in section.basis
    lstm = tflite.read_graph(_reference("keras_lstm_mnist_ptq.tflite"))  # no convolution: far below the fit
    assert "outside the fitted" in performance.estimate(lstm, preflight.preflight(lstm)).basis


def _with_input(graph, shape):
    tensors = list(graph.tensors)
    tensors[graph.inputs[0]] = dataclasses.replace(tensors[graph.inputs[0]], shape=shape)
    return dataclasses.replace(graph, tensors=tuple(tensors))


def test_the_imx500_figure_applies_only_to_the_published_network_at_its_input_size():
    from compilers.imx500 import performance
    from zoo import tflite
    graph = tflite.read_graph(_reference("mobilenet_v1_0.25_128_quant.tflite"))
    paper = performance.estimate("tinytracker", _with_input(graph, (1, 112, 112, 5)))
    assert (paper.kind, paper.latency_ms) == ("published", 0.86)
    assert "2307.07813" in paper.citations[0] and "benchmarks.imx500_on_pi" in paper.basis
    for architecture, shape in (("tinytracker", (1, 128, 128, 5)), ("tinytracker_s", (1, 112, 112, 5)),
                                (None, (1, 112, 112, 5))):
        section = performance.estimate(architecture, _with_input(graph, shape))
        assert section.kind == "none" and section.latency_ms is None, (architecture, shape)
        assert "MobileNet V1" in section.basis and section.citations  # Sony's figure, and why not
