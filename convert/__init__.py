"""Conversion of a trained bundle into deployable artifacts, imported as ``edge_mmer.convert``.

The steps of ``edge-mmer convert``, each writing artifacts into the bundle: ``onnx_artifacts``
(ONNX FP32/FP16: export, checks, parity with PyTorch, recorded), ``int8`` (the INT8 artifacts with
their calibration and drift) and ``tensorrt_plans`` (TensorRT 10 plans built on the device, with
their build facts). The tools they use, each on one network or one pair of runs: ``onnx_export``
(the export wrappers, opset 17, onnxslim, FP16), ``opcheck`` (TensorRT ONNX-parser operator lists),
``quantize`` (one network's INT8 Q/DQ graph, flavours int8-cpu / int8-trt), ``parity`` (ONNX Runtime
against PyTorch), ``drift`` (INT8 against FP32 on the runtime's decision path), ``compare`` (the one
comparator behind both), ``runners`` (the runners they measure with) and ``tensorrt_build`` (one
plan). The plans' shape ranges and what a plan is tied to are part of the bundle contract
(:mod:`edge_mmer.bundle.shapes`, :mod:`edge_mmer.bundle.plans`).
Importing this package imports nothing heavy; torch is needed only for the export.
"""
