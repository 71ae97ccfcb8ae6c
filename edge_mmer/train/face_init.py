"""``--face-init SOURCE``: start the face encoder's Inception-ResNet-v2 backbone from pretrained weights
instead of from scratch (a few thousand clips do not teach a network from nothing what a face is).

``SOURCE`` is a local file in timm's key layout (``.safetensors``, or a torch checkpoint ``.pth`` /
``.pt`` / ``.bin`` / ``.ckpt`` read with ``weights_only=True``: tensors only, never code), or a timm
model name (``inception_resnet_v2``, ``inception_resnet_v2.tf_in1k``) whose weights timm fetches when
the machine is online. The keys are checked against this backbone (a mismatch names the missing and
unexpected keys and the file); the file's sha256 goes into the bundle's provenance.

``--face-freeze-epochs N`` keeps the stem (:data:`STEM`: the convolutions before the first Inception
block) frozen for the first N face-encoder epochs, so the pretrained low-level filters are not
scrambled by the large early gradients of a fresh head.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from edge_mmer.errors import WeightsError
from edge_mmer.models import FaceEncoder
from edge_mmer.models.face import read_state_dict

log = logging.getLogger(__name__)

__all__ = ["STEM", "FaceInit", "load_face_init"]

#: The backbone's stem, frozen by ``--face-freeze-epochs`` (module prefixes of :class:`FaceEncoder`).
STEM = tuple(f"backbone.{m}" for m in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a"))

_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_TIMM_NAME = re.compile(r"^inception_resnet_v2(\.[A-Za-z0-9_]+)?$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FaceInit:
    """Pretrained backbone weights and where they came from (``provenance`` goes into the bundle)."""

    source: str
    state: dict[str, Tensor] = field(repr=False)
    provenance: dict[str, Any]

    def apply(self, model: FaceEncoder) -> list[str]:
        """Load the weights into ``model.backbone`` (keys checked); returns the keys skipped (the
        1000-way ImageNet classifier)."""
        skipped = model.load_backbone_state(self.state, self.source)
        log.info("face encoder initialised from %s (%d tensors)", self.source, len(self.state) - len(skipped))
        return skipped


def load_face_init(source: str, model: FaceEncoder | None = None) -> FaceInit:
    """Read ``source`` (a local file or a timm model name, see the module docstring). With ``model``
    the keys are checked now, before any training starts. Raises :class:`WeightsError`."""
    path = Path(source).expanduser()
    if path.is_file() or path.suffix.lower() in _SUFFIXES or "/" in source:
        if not path.is_file():
            raise WeightsError(f"--face-init {source}: no such file")
        try:
            state = read_state_dict(path)
        except WeightsError as exc:
            raise WeightsError(f"--face-init: {exc}") from None
        except Exception as exc:  # safetensors / torch raise their own types on a file that is not theirs
            raise WeightsError(f"--face-init {path}: not a readable state dict ({type(exc).__name__}: {exc})") from None
        prov: dict[str, Any] = {"kind": "file", "file": path.name, "sha256": _sha256(path), "tensors": len(state)}
        init = FaceInit(str(path), state, prov)
    elif _TIMM_NAME.match(source):
        init = _from_timm(source)
    else:
        raise WeightsError(f"--face-init {source}: neither a file nor a timm Inception-ResNet-v2 model name "
                           "(e.g. inception_resnet_v2.tf_in1k)")
    if model is not None:
        init.apply(model)
    return init


def _from_timm(name: str) -> FaceInit:
    """timm's pretrained weights for ``name`` (downloaded by timm into its cache; needs the network)."""
    try:
        import timm
    except ImportError:
        raise WeightsError(f"--face-init {name}: a timm model name needs timm (pip install timm), or give a "
                           "local .safetensors file") from None
    try:
        ref = timm.create_model(name, pretrained=True)
    except Exception as exc:  # no network, unknown tag: timm / huggingface_hub raise many types
        raise WeightsError(f"--face-init {name}: timm could not fetch the pretrained weights "
                           f"({type(exc).__name__}: {exc}); offline, download the .safetensors once and give "
                           "its path") from None
    state = {k: v.detach().contiguous() for k, v in ref.state_dict().items()}
    prov = {"kind": "timm", "model": name, "timm_version": str(getattr(timm, "__version__", "?")),
            "tensors": len(state)}
    return FaceInit(name, state, prov)
