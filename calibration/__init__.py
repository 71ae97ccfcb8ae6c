"""Calibration sets for INT8 quantization, built from a dataset split (never the test split).

Imported as ``edge_mmer.calibration``: ``sets`` (:class:`CalibrationSet`, npz save/load with
provenance and sha256, no pickle), ``reader`` (:class:`CalibrationReader`, an ONNX Runtime
``CalibrationDataReader`` over one network's samples) and ``from_dataset`` (the builder, which runs
the training front ends and the torch encoders; torch is imported only when it is called).
Importing this package imports numpy only.
"""

from edge_mmer.calibration.sets import CalibrationError, CalibrationSet, load_calibration_set, save_calibration_set

__all__ = ["CalibrationError", "CalibrationSet", "load_calibration_set", "save_calibration_set"]
