"""Inception-ResNet-v2 (Szegedy et al., 2016), width- and depth-scalable, timm-compatible.

An independent re-implementation whose module names — and so ``state_dict()`` keys and shapes —
match ``timm.create_model("inception_resnet_v2")`` exactly when ``width=1.0``,
``repeats=(10, 20, 9)`` and ``num_classes=1000``: a timm checkpoint (e.g. the ImageNet weights)
loads with ``strict=True``. timm is not imported here.

``width`` multiplies every convolution's output channel count; each count is rounded to a multiple
of 8 (minimum 8). Channel counts that the original network obtains by concatenation (the residual
widths 320 / 1088 / 2080) are derived the same way from the scaled branches, so every concatenation
and residual addition stays consistent at any width. ``repeats`` sets the number of
Inception-ResNet-A, -B and -C blocks (the final, un-activated Block8 is always present).

Spatially the network uses valid (unpadded) stride-2 convolutions and pools in the stem and the two
reduction blocks; :func:`feature_map_size` gives the final feature-map side for an input side and
:data:`MIN_INPUT_SIZE` is the smallest input that leaves a non-empty map (75 px).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_INPUT_SIZE",
    "TIMM_REPEATS",
    "BasicConv2d",
    "InceptionResNetV2",
    "feature_map_size",
    "scale_channels",
]

TIMM_REPEATS: tuple[int, int, int] = (10, 20, 9)
BN_EPS = 1e-3


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to the nearest multiple of 8 (halves round up), at least 8.

    Exact identity for ``width == 1`` on every channel count the network uses.
    """
    if width == 1.0:
        return channels
    return max(8, int(channels * width + 4) // 8 * 8)


def _valid(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def feature_map_size(img_size: int) -> int:
    """Side of the final feature map for a square ``img_size`` input (<= 0: too small)."""
    s = _valid(img_size, 3, 2)  # conv2d_1a
    s = _valid(s, 3, 1)  # conv2d_2a (conv2d_2b is padded)
    s = _valid(s, 3, 2)  # maxpool_3a
    s = _valid(s, 3, 1)  # conv2d_4a (conv2d_3b is 1x1)
    s = _valid(s, 3, 2)  # maxpool_5a
    s = _valid(s, 3, 2)  # mixed_6a
    s = _valid(s, 3, 2)  # mixed_7a
    return s


MIN_INPUT_SIZE: int = next(n for n in range(1, 512) if feature_map_size(n) >= 1)


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; submodules ``conv`` / ``bn`` as in timm."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act = nn.ReLU(inplace=True)
        self.out_channels = out_ch

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Mixed5b(nn.Module):
    """Stem output block (35x35 grid at 299 px): four branches concatenated."""

    def __init__(self, in_ch: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.branch0 = BasicConv2d(in_ch, c(96), 1)
        self.branch1 = nn.Sequential(BasicConv2d(in_ch, c(48), 1), BasicConv2d(c(48), c(64), 5, padding=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(in_ch, c(64), 1),
            BasicConv2d(c(64), c(96), 3, padding=1),
            BasicConv2d(c(96), c(96), 3, padding=1),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), BasicConv2d(in_ch, c(64), 1)
        )
        self.out_channels = c(96) + c(64) + c(96) + c(64)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid), residual scale 0.17."""

    def __init__(self, ch: int, w: float, scale: float = 0.17) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.scale = scale
        self.branch0 = BasicConv2d(ch, c(32), 1)
        self.branch1 = nn.Sequential(BasicConv2d(ch, c(32), 1), BasicConv2d(c(32), c(32), 3, padding=1))
        self.branch2 = nn.Sequential(
            BasicConv2d(ch, c(32), 1),
            BasicConv2d(c(32), c(48), 3, padding=1),
            BasicConv2d(c(48), c(64), 3, padding=1),
        )
        self.conv2d = nn.Conv2d(c(32) + c(32) + c(64), ch, 1)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        out = self.conv2d(out)
        return self.act(out * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A: 35x35 -> 17x17."""

    def __init__(self, in_ch: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.branch0 = BasicConv2d(in_ch, c(384), 3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(in_ch, c(256), 1),
            BasicConv2d(c(256), c(256), 3, padding=1),
            BasicConv2d(c(256), c(384), 3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)
        self.out_channels = c(384) + c(384) + in_ch

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Block17(nn.Module):
    """Inception-ResNet-B (17x17 grid), residual scale 0.10."""

    def __init__(self, ch: int, w: float, scale: float = 0.10) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.scale = scale
        self.branch0 = BasicConv2d(ch, c(192), 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(ch, c(128), 1),
            BasicConv2d(c(128), c(160), (1, 7), padding=(0, 3)),
            BasicConv2d(c(160), c(192), (7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(c(192) + c(192), ch, 1)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.conv2d(out)
        return self.act(out * self.scale + x)


class Mixed7a(nn.Module):
    """Reduction-B: 17x17 -> 8x8."""

    def __init__(self, in_ch: int, w: float) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.branch0 = nn.Sequential(BasicConv2d(in_ch, c(256), 1), BasicConv2d(c(256), c(384), 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(in_ch, c(256), 1), BasicConv2d(c(256), c(288), 3, stride=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(in_ch, c(256), 1),
            BasicConv2d(c(256), c(288), 3, padding=1),
            BasicConv2d(c(288), c(320), 3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)
        self.out_channels = c(384) + c(288) + c(320) + in_ch

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Block8(nn.Module):
    """Inception-ResNet-C (8x8 grid), residual scale 0.20; the final block has scale 1 and no ReLU."""

    def __init__(self, ch: int, w: float, scale: float = 1.0, no_relu: bool = False) -> None:
        super().__init__()
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.scale = scale
        self.branch0 = BasicConv2d(ch, c(192), 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(ch, c(192), 1),
            BasicConv2d(c(192), c(224), (1, 3), padding=(0, 1)),
            BasicConv2d(c(224), c(256), (3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(c(192) + c(256), ch, 1)
        self.relu: nn.Module = nn.Identity() if no_relu else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.conv2d(out)
        return self.relu(out * self.scale + x)


class InceptionResNetV2(nn.Module):
    """Inception-ResNet-v2 with timm's module names.

    Args:
        num_classes: classifier outputs; 0 makes ``classif`` an ``nn.Identity`` (no parameters) and
            ``forward`` returns the pooled features (B, num_features).
        in_chans: input channels.
        width: channel multiplier in (0, 1]; 1.0 is the original network.
        repeats: number of Inception-ResNet-A, -B, -C blocks (original: 10, 20, 9).
        drop_rate: dropout before the classifier (``head_drop``).

    Input (B, in_chans, S, S) with S >= :data:`MIN_INPUT_SIZE` (75); ``forward_features`` returns
    (B, num_features, F, F) with F = :func:`feature_map_size` (S) (8 at 299, 1 at 96).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width: float = 1.0,
        repeats: Sequence[int] = TIMM_REPEATS,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 < width <= 1.0:
            raise ValueError(f"InceptionResNetV2: width must be in (0, 1], got {width!r}")
        if len(repeats) != 3 or any(int(r) < 0 for r in repeats):
            raise ValueError(f"InceptionResNetV2: repeats must be three non-negative counts, got {tuple(repeats)!r}")
        w = float(width)
        c = lambda n: scale_channels(n, w)  # noqa: E731
        self.width = w
        self.repeats = (int(repeats[0]), int(repeats[1]), int(repeats[2]))
        self.num_classes = num_classes
        self.in_chans = in_chans

        self.conv2d_1a = BasicConv2d(in_chans, c(32), 3, stride=2)
        self.conv2d_2a = BasicConv2d(c(32), c(32), 3)
        self.conv2d_2b = BasicConv2d(c(32), c(64), 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(c(64), c(80), 1)
        self.conv2d_4a = BasicConv2d(c(80), c(192), 3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)

        self.mixed_5b = Mixed5b(c(192), w)
        ch_a = self.mixed_5b.out_channels
        self.repeat = nn.Sequential(*[Block35(ch_a, w, scale=0.17) for _ in range(self.repeats[0])])
        self.mixed_6a = Mixed6a(ch_a, w)
        ch_b = self.mixed_6a.out_channels
        self.repeat_1 = nn.Sequential(*[Block17(ch_b, w, scale=0.10) for _ in range(self.repeats[1])])
        self.mixed_7a = Mixed7a(ch_b, w)
        ch_c = self.mixed_7a.out_channels
        self.repeat_2 = nn.Sequential(*[Block8(ch_c, w, scale=0.20) for _ in range(self.repeats[2])])
        self.block8 = Block8(ch_c, w, no_relu=True)

        self.num_features: int = c(1536)
        self.conv2d_7b = BasicConv2d(ch_c, self.num_features, 1)

        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head_drop = nn.Dropout(drop_rate)
        self.classif: nn.Module = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        logger.debug(
            "InceptionResNetV2 width=%s repeats=%s channels A/B/C=%d/%d/%d num_features=%d",
            w, self.repeats, ch_a, ch_b, ch_c, self.num_features,
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, S, S) -> (B, num_features, F, F)."""
        x = self.conv2d_1a(x)
        x = self.conv2d_2a(x)
        x = self.conv2d_2b(x)
        x = self.maxpool_3a(x)
        x = self.conv2d_3b(x)
        x = self.conv2d_4a(x)
        x = self.maxpool_5a(x)
        x = self.mixed_5b(x)
        x = self.repeat(x)
        x = self.mixed_6a(x)
        x = self.repeat_1(x)
        x = self.mixed_7a(x)
        x = self.repeat_2(x)
        x = self.block8(x)
        x = self.conv2d_7b(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(B, num_features, F, F) -> pooled (B, num_features) if ``pre_logits`` else logits."""
        x = self.global_pool(x)
        x = self.head_drop(x)
        return x if pre_logits else self.classif(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
