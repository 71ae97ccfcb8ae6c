"""Profiling: per-stage timing of the real pipeline, per-network micro benchmarks, device facts."""
