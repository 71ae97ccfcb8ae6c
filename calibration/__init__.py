"""Calibration sets for INT8 quantization, built from a dataset split or recorded on the device.

Imported as ``edge_mmer.calibration``. Lands with the conversion issue.
"""
