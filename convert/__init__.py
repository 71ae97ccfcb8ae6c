"""Conversion of a trained bundle into deployable artifacts (ONNX FP32/FP16, INT8 Q/DQ, TensorRT plans).

Imported as ``edge_mmer.convert``. The converters land with the conversion issue; this package
exists now so the import namespace and packaging are settled from the first release.
"""
