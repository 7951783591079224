"""GazeCapture's metric: mean Euclidean distance in cm between predicted and true (XCam, YCam),
over all frames and separately for phones and tablets."""
import numpy as np

from zoo.artifacts import GazeErrors

MEAN_BASELINE = "mean_baseline"  # the training-mean predictor's key beside the models' (manifest, rows)


def _mean_distance(pred_cm, true_cm):
    if not len(true_cm):
        return None
    return float(np.mean(np.linalg.norm(pred_cm - true_cm, axis=1)))


def gaze_errors(pred_cm, true_cm, is_tablet) -> GazeErrors:
    """The errors of ``pred_cm`` (zoo.artifacts.GazeErrors); an error is None where there are no frames."""
    pred_cm = np.asarray(pred_cm, np.float64).reshape(-1, 2)
    true_cm = np.asarray(true_cm, np.float64).reshape(-1, 2)
    is_tablet = np.asarray(is_tablet, bool).reshape(-1)
    if not len(pred_cm) == len(true_cm) == len(is_tablet):
        raise ValueError(f"{len(pred_cm)} predictions, {len(true_cm)} labels and {len(is_tablet)} "
                         "device flags: they must be one per frame")
    return GazeErrors(cm=_mean_distance(pred_cm, true_cm),
                      cm_phone=_mean_distance(pred_cm[~is_tablet], true_cm[~is_tablet]),
                      cm_tablet=_mean_distance(pred_cm[is_tablet], true_cm[is_tablet]),
                      frames=int(len(true_cm)))


def mean_baseline(train_mean, true_cm, is_tablet) -> GazeErrors:
    """The errors of always predicting the training set's mean gaze: the floor a model must beat."""
    true_cm = np.asarray(true_cm, np.float64).reshape(-1, 2)
    return gaze_errors(np.broadcast_to(np.asarray(train_mean, np.float64), true_cm.shape), true_cm, is_tablet)
