"""The embedded demo: a digit classifier trained on scikit-learn's bundled handwritten
digits, a sample video rendered from held-out digits, and the pipeline that classifies it.

``aioinfer demo`` runs it; nothing is downloaded. The model (``data/digits_cnn.onnx``) and
the held-out digits (``data/held_out_digits.npz``) are committed; ``data/MODEL.md`` says how
they were made (:mod:`aioinfer.demo.train`) and how accurate the model is.
"""

from .assets import DATA, held_out_digits, model_path, prepared_model
from .run import DemoReport, run_demo, write_sample_video

__all__ = ["DATA", "held_out_digits", "model_path", "prepared_model", "run_demo",
           "write_sample_video", "DemoReport"]
