"""Running a model: one loader of model files (loader.py), evaluation on a data root
(evaluate.py), gaze on photos, video and a camera (predict.py) with face detection (faces.py)
and media reading (media.py), and the error metrics (metrics.py)."""
