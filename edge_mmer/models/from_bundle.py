"""Rebuild a bundle's torch networks from its manifest (``class``, ``arch``, the config) and load
their safetensors weights strictly. Training side only (torch); the runtime never calls this."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from edge_mmer.bundle import Bundle, BundleError
from edge_mmer.models.context import ContextLSTM
from edge_mmer.models.face import FaceEncoder
from edge_mmer.models.fusion import FusionLSTM
from edge_mmer.models.speech import SpeechEncoder

log = logging.getLogger(__name__)

__all__ = ["build_network", "load_torch_networks"]

NETWORK_CLASSES = ("SpeechEncoder", "FaceEncoder", "ContextLSTM", "FusionLSTM")


def _arch_int(arch: Mapping[str, Any], key: str, where: str, bundle: Bundle) -> int:
    value = arch.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BundleError(bundle.path, f"manifest.json field '{where}.arch.{key}'",
                          f"expected a positive integer, got {value!r}")
    return value


def build_network(bundle: Bundle, name: str) -> nn.Module:
    """An untrained module of the class and architecture that ``networks.<name>`` records."""
    net = bundle.network_specs[name]
    where = f"networks.{name}"
    arch = net.arch
    if arch is None:
        raise BundleError(bundle.path, f"manifest.json field '{where}.arch'",
                          f"expected an object, got {net.extra('arch')!r}")
    cfg = bundle.config
    n_classes = _arch_int(arch, "n_classes", where, bundle)
    cls = net.network_class
    if cls == "SpeechEncoder":
        return SpeechEncoder(_arch_int(arch, "n_mels", where, bundle), n_classes, cfg.speech_encoder)
    if cls == "FaceEncoder":
        return FaceEncoder(n_classes, cfg.face_encoder, _arch_int(arch, "img_size", where, bundle))
    if cls == "ContextLSTM":
        return ContextLSTM(_arch_int(arch, "input_dim", where, bundle), n_classes, cfg.context)
    if cls == "FusionLSTM":
        return FusionLSTM(_arch_int(arch, "input_dim", where, bundle), n_classes, cfg.fusion)
    raise BundleError(bundle.path, f"manifest.json field '{where}.class'",
                      f"unknown network class {net.extra('class')!r} (known: {', '.join(NETWORK_CLASSES)})")


def load_torch_networks(bundle: Bundle) -> dict[str, nn.Module]:
    """Every network of the bundle, rebuilt, its weights loaded strictly (sha256 checked on read),
    on the CPU in eval mode. Raises :class:`BundleError` naming the file on a shape or key mismatch."""
    out: dict[str, nn.Module] = {}
    for name, net in bundle.network_specs.items():
        module = build_network(bundle, name)
        state = {k: torch.from_numpy(v.copy()) for k, v in bundle.load_tensors(net.weights).items()}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(bundle.path, f"bundle file '{net.weights}'",
                              f"weights do not fit {net.extra('class')} {net.extra('arch')}: {exc}") from None
        module.eval()
        out[name] = module
        log.debug("loaded %s (%s) from %s", name, net.network_class, net.weights)
    return out
