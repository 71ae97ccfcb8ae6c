"""Calibration sets for INT8 quantization, built from a dataset split (never the test split).

Imported as ``edge_mmer.calibration``: ``sets`` (:class:`CalibrationSet`, npz save/load with
provenance and sha256, no pickle), ``reader`` (:class:`CalibrationReader`, an ONNX Runtime
``CalibrationDataReader`` over one network's samples), ``tap`` (a runner wrapper that keeps what a
network was fed), ``inputs`` (every network's real inputs on the decision path), ``from_dataset``
(the builder from a dataset split, through the training front ends and the torch networks; torch is
imported only when it is called) and ``record`` (the builder on the device, through the runtime
loop). Importing this package imports numpy only.
"""

from edge_mmer.calibration.sets import CalibrationError, CalibrationSet, load_calibration_set, save_calibration_set

__all__ = ["CalibrationError", "CalibrationSet", "load_calibration_set", "save_calibration_set"]
