"""Face encoder: Inception-ResNet-v2 backbone -> pooled -> fully-connected embedding (the face feature)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from edge_mmer.config import FaceEncoderConfig
from edge_mmer.errors import WeightsError
from edge_mmer.models.inception_resnet_v2 import (
    MIN_INPUT_SIZE,
    TIMM_REPEATS,
    InceptionResNetV2,
    feature_map_size,
)

logger = logging.getLogger(__name__)

__all__ = ["FaceEncoder", "WeightsError", "read_state_dict"]


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a local checkpoint: ``.safetensors`` (safetensors) or ``.pth``/``.pt``/``.bin``/``.ckpt``
    (``torch.load(weights_only=True)``; a ``state_dict`` / ``model`` / ``state_dict_ema`` wrapper is
    unwrapped). Returns tensors on CPU."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(p), device="cpu"))
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
        if isinstance(obj, Mapping):
            for wrapper in ("state_dict", "model", "state_dict_ema"):
                inner = obj.get(wrapper)
                if isinstance(inner, Mapping):
                    obj = inner
                    break
        if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
            raise WeightsError(f"{p}: not a state dict of tensors")
        return {str(k): v for k, v in obj.items()}
    raise WeightsError(f"{p}: unknown checkpoint format '{suffix}' (expected .safetensors, .pth, .pt, .bin or .ckpt)")


def _strip_prefix(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in ("module.", "model."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


class FaceEncoder(nn.Module):
    """Face crop -> embedding (the paper's "fully connected layer" feature) + logits.

    Graph: (B, 3, S, S) -> ``backbone`` Inception-ResNet-v2 features (B, F, s, s) -> global average
    pool (B, F) -> Dropout -> ``embed`` Linear(F -> E) -> ReLU = embedding (B, E) -> ``head``
    Linear(E -> n_classes) = logits.

    The embedding passes through a ReLU: it is a hidden fully-connected layer of the classifier (a
    linear embedding followed directly by the linear head would collapse into one linear map), and
    its non-negative outputs suit the chi-square feature selection that follows. The backbone's own
    classifier is absent (``num_classes=0``); its parameters carry timm's names under ``backbone.``.

    ``img_size`` must be at least 75 px (the valid-padding stem and reductions); at 96 px the final
    feature map is 1x1, so BatchNorm needs a training batch of 2 or more there.
    """

    def __init__(self, n_classes: int, cfg: FaceEncoderConfig, img_size: int) -> None:
        super().__init__()
        cfg.validate()
        if n_classes < 1:
            raise ValueError(f"FaceEncoder: n_classes must be >= 1, got {n_classes}")
        if feature_map_size(img_size) < 1:
            raise ValueError(
                f"FaceEncoder: img_size {img_size} is too small for Inception-ResNet-v2 "
                f"(valid-padding stem and reductions need >= {MIN_INPUT_SIZE} px)"
            )
        self.n_classes = n_classes
        self.img_size = img_size
        self.width = cfg.width
        self.repeats = tuple(cfg.repeats)
        self.feature_dim = cfg.embedding_dim
        self.backbone = InceptionResNetV2(num_classes=0, width=cfg.width, repeats=cfg.repeats)
        self.dropout = nn.Dropout(cfg.dropout)
        self.embed = nn.Linear(self.backbone.num_features, cfg.embedding_dim)
        self.act = nn.ReLU()
        self.head = nn.Linear(cfg.embedding_dim, n_classes)

    def pooled(self, x: Tensor) -> Tensor:
        """Backbone output, globally average-pooled: (B, 3, S, S) -> (B, backbone.num_features)."""
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, 3, S, S) normalised crops -> (embedding (B, E), logits (B, n_classes))."""
        emb = self.act(self.embed(self.dropout(self.pooled(x))))
        return emb, self.head(emb)

    def features(self, x: Tensor) -> Tensor:
        """Export form: x (B, 3, S, S) -> embedding (B, E)."""
        return self.forward(x)[0]

    def load_timm_weights(self, path: str | Path) -> list[str]:
        """Load a local timm ``inception_resnet_v2`` checkpoint into ``backbone``.

        Accepts ``.safetensors`` or ``.pth``/``.pt``/``.bin``; strips a ``module.``/``model.``
        prefix; drops the ImageNet classifier (``classif.*``, absent here); every other key must
        match by name and shape (missing ``num_batches_tracked`` buffers are tolerated). Needs
        ``width == 1`` and ``repeats == (10, 20, 9)``. Returns the checkpoint keys that were skipped.
        """
        self._check_timm_width()
        try:
            sd = read_state_dict(path)
        except (OSError, WeightsError):
            raise
        except Exception as exc:  # safetensors / torch raise their own types on a file that is not theirs
            raise WeightsError(f"{path}: not a readable state dict ({type(exc).__name__}: {exc})") from None
        return self.load_backbone_state(sd, str(path))

    def _check_timm_width(self) -> None:
        if self.width != 1.0:
            raise WeightsError(
                f"load_timm_weights: face_encoder.width is {self.width}, timm's Inception-ResNet-v2 "
                "weights need width = 1.0 (the paper preset)"
            )

    def load_backbone_state(self, state: Mapping[str, Tensor], source: str) -> list[str]:
        """Load a timm-layout ``inception_resnet_v2`` state dict into ``backbone`` (the rules of
        :meth:`load_timm_weights`; ``source`` names it in errors). Returns the keys skipped."""
        self._check_timm_width()
        sd = _strip_prefix(dict(state))
        own = self.backbone.state_dict()
        skipped: list[str] = []
        to_load: dict[str, Tensor] = {}
        mismatched: list[str] = []
        for k, v in sd.items():
            if k.startswith("classif.") and (k not in own or own[k].shape != v.shape):
                skipped.append(k)
                continue
            if k in own and own[k].shape != v.shape:
                mismatched.append(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}")
                continue
            to_load[k] = v
        missing = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in to_load if k not in own]
        if missing or unexpected or mismatched:
            hint = ("" if self.repeats == TIMM_REPEATS
                    else f" (face_encoder.repeats is {self.repeats}, timm's is {TIMM_REPEATS})")
            raise WeightsError(
                f"{source}: not an inception_resnet_v2 checkpoint for this backbone{hint}: "
                f"{len(missing)} missing keys {_head(missing)}, {len(unexpected)} unexpected keys {_head(unexpected)}, "
                f"{len(mismatched)} shape mismatches {_head(mismatched)}"
            )
        for k in own:
            if k not in to_load:  # num_batches_tracked absent from the checkpoint: keep ours
                to_load[k] = own[k]
        self.backbone.load_state_dict(to_load, strict=True)
        logger.info("loaded %d backbone tensors from %s; skipped %s", len(sd) - len(skipped), source, skipped)
        return skipped


def _head(keys: list[str], n: int = 8) -> str:
    shown = ", ".join(keys[:n])
    return f"[{shown}{', ...' if len(keys) > n else ''}]"
