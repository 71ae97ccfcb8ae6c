"""Mixed precision for the encoders: bf16 autocast on GPUs that support it, else fp16 with a gradient
scaler; fp32 on the CPU (and whenever ``--amp off``).

Only the forward pass and the loss run under autocast; the weights, the optimizer state, validation
and the bundle stay fp32 (a bundle is the same whatever precision trained it). bf16 has fp32's
range, so it needs no loss scaling; fp16 does (:class:`torch.amp.GradScaler`, whose state is
checkpointed with the optimizer's).
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from edge_mmer.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["AMP_CHOICES", "Precision", "choose_precision"]

AMP_CHOICES = ("auto", "off")


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: ``fp32``, ``bf16`` or ``fp16`` (autocast) on ``device_type``."""

    name: str = "fp32"
    device_type: str = "cpu"

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self) -> AbstractContextManager[object]:
        """The forward pass's context: autocast to the half type, or nothing for fp32."""
        dtype = self.dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16 (None otherwise: bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None


def choose_precision(amp: str, device: torch.device) -> Precision:
    """``auto``: bf16 on a CUDA device that supports it, else fp16 on CUDA, fp32 on the CPU; ``off``: fp32."""
    if amp not in AMP_CHOICES:
        raise UsageError(f"--amp: expected one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if amp == "off" or device.type != "cuda":
        return Precision("fp32", device.type)
    name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    log.info("mixed precision: %s autocast for the encoders on %s", name, device)
    return Precision(name, "cuda")
