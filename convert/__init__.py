"""Conversion of a trained bundle into deployable artifacts, imported as ``edge_mmer.convert``.

``bundle_convert`` (ONNX FP32/FP16 export, onnxslim, parity with PyTorch, recorded in the
manifest), ``opcheck`` (TensorRT ONNX-parser operator lists), ``profiles`` / ``tensorrt_build`` /
``tensorrt_plans`` (TensorRT 10 plans built on the device, with their build facts),
``device_facts`` (what a plan is tied to), ``quantize`` (INT8 Q/DQ, flavours int8-cpu / int8-trt) and
``int8`` (INT8 artifacts with drift measured on the test split).
Importing this package imports nothing heavy; torch is needed only for the export.
"""
