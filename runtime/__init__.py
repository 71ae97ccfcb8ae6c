"""The lean runtime loop (sources, segmentation, runners, pipeline, sinks). Never imports torch.

Imported as ``edge_mmer.runtime``. The loop lands with the runtime issue; this package exists now
so the import namespace, packaging and the no-torch rule (tested) are settled from the start.
"""
