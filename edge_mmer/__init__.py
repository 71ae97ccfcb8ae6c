"""edge-mmer: multimodal (speech + face) emotion recognition for robots and kiosks."""

__version__ = "0.1.0"
