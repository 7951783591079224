import dataclasses

import numpy as np
import pytest

from zoo.inference import metrics


def test_gaze_errors_are_mean_euclidean_cm_overall_and_per_device():
    true = np.array([[0.0, 0.0], [1.0, 1.0], [-2.0, -5.0], [10.0, 0.0]])
    pred = true + np.array([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, -1.0]])  # distances 5, 0, 10, 1
    is_tablet = np.array([False, False, True, True])

    errors = metrics.gaze_errors(pred, true, is_tablet)

    expected = {"cm": 4.0, "cm_phone": 2.5, "cm_tablet": 5.5, "frames": 4}
    assert dataclasses.asdict(errors) == pytest.approx(expected)


def test_a_device_type_without_frames_gives_none():
    errors = metrics.gaze_errors([[1.0, 0.0]], [[0.0, 0.0]], [False])
    assert errors == metrics.GazeErrors(cm=1.0, cm_phone=1.0, cm_tablet=None, frames=1)
    assert metrics.gaze_errors(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, bool)).cm is None


def test_mean_baseline_predicts_the_training_mean_for_every_frame():
    true = np.array([[0.0, -3.0], [4.0, -3.0], [0.0, 0.0]])
    is_tablet = np.array([False, True, False])
    baseline = metrics.mean_baseline(np.array([0.0, -3.0]), true, is_tablet)
    expected = {"cm": 7 / 3, "cm_phone": 1.5, "cm_tablet": 4.0, "frames": 3}
    assert dataclasses.asdict(baseline) == pytest.approx(expected)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one per frame"):
        metrics.gaze_errors(np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(3, bool))
