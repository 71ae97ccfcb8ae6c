"""Runners: one interface over ONNX Runtime and native TensorRT."""
