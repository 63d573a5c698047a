"""The authors' pre-activation ResNets, transcribed to PyTorch from their Torch7 code.

Written from the published Lua alone, independently of explorer (nothing here imports it):
- `FbPreResNetCifar`: fb.resnet.torch `models/preresnet.lua` (master), CIFAR-10 branch:
  conv 3x3 -> stages of basic blocks -> BN -> ReLU -> avg pool 8 -> linear. The first block of
  every stage is 'both_preact': its BN-ReLU runs before the split, so both paths read it; the
  other blocks pre-activate inside the residual path only. Shortcut type A: identity, or where
  the planes change a strided 1x1 average pool (a subsample) concatenated with zeros.
- `PreActResNet1k`: KaimingHe/resnet-1k-layers `resnet-pre-act.lua` (ResNet-164 / 1001):
  conv 3x3 -> stages of bottleneck units (16 -> 64 -> 128 -> 256 planes) -> BN -> ReLU ->
  avg pool 8 -> linear. Units that increase dimensions share one BN-ReLU between the residual
  path and a bare 1x1 projection; the stride sits on the first 1x1.
Convs have no bias (cudnn >= 4 drops it); the linear layer has one.

Modules are registered in execution order, so the two networks' state_dict entries can be
matched by position against a model built with the same structure.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_planes: int, out_planes: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, k, stride=stride, padding=k // 2, bias=False)


class ZeroConcatShortcut(nn.Module):
    """preresnet.lua type A: SpatialAveragePooling(1, 1, s, s), then Concat(Identity, MulConstant(0))."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 1, self.stride)
        return torch.cat([x, x * 0], dim=1)  # planes doubled


class FbBasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, both_preact: bool) -> None:
        super().__init__()
        self.both_preact = both_preact
        self.preact_bn = nn.BatchNorm2d(in_planes)  # before the split, or first op of the path
        self.path_conv_a = conv(in_planes, planes, 3, stride)
        self.path_bn_b = nn.BatchNorm2d(planes)
        self.path_conv_b = conv(planes, planes, 3)
        if in_planes == planes:
            self.skip = nn.Identity()
        else:
            assert planes == 2 * in_planes, "type A doubles the planes"
            self.skip = ZeroConcatShortcut(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.preact_bn(x))
        if self.both_preact:
            x = a  # block:add(BN, ReLU) ahead of the ConcatTable
        r = self.path_conv_b(F.relu(self.path_bn_b(self.path_conv_a(a))))
        return r + self.skip(x)


class FbPreResNetCifar(nn.Module):
    def __init__(self, depth: int = 110, num_classes: int = 10) -> None:
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.head_conv = conv(3, 16, 3)
        blocks, planes_in = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(FbBasicBlock(planes_in, planes, stride if i == 0 else 1, both_preact=i == 0))
                planes_in = planes
        self.blocks = nn.Sequential(*blocks)
        self.last_bn = nn.BatchNorm2d(64)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.head_conv(x))
        x = F.avg_pool2d(F.relu(self.last_bn(x)), 8)  # (B, 64, 1, 1) at 32x32 input
        return self.classifier(x.flatten(1))


class PreActBottleneck1k(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        mid = out_planes // 4
        self.increasing = in_planes != out_planes
        self.bn_a = nn.BatchNorm2d(in_planes)  # "common BN, ReLU" where dimensions increase
        self.conv_a = conv(in_planes, mid, 1, stride)
        self.bn_b = nn.BatchNorm2d(mid)
        self.conv_b = conv(mid, mid, 3)
        self.bn_c = nn.BatchNorm2d(mid)
        self.conv_c = conv(mid, out_planes, 1)
        self.proj = conv(in_planes, out_planes, 1, stride) if self.increasing else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn_a(x))
        r = self.conv_a(a)
        r = self.conv_b(F.relu(self.bn_b(r)))
        r = self.conv_c(F.relu(self.bn_c(r)))
        return r + (self.proj(a) if self.increasing else x)


class PreActResNet1k(nn.Module):
    def __init__(self, depth: int = 164, num_classes: int = 10) -> None:
        super().__init__()
        assert (depth - 2) % 9 == 0, "depth should be 9n+2 (e.g., 164 or 1001 in the paper)"
        n = (depth - 2) // 9
        stages = (16, 64, 128, 256)
        self.head_conv = conv(3, stages[0], 3)
        units = []
        for s, stride in zip(range(1, 4), (1, 2, 2)):
            units.append(PreActBottleneck1k(stages[s - 1], stages[s], stride))
            units += [PreActBottleneck1k(stages[s], stages[s], 1) for _ in range(n - 1)]
        self.units = nn.Sequential(*units)
        self.last_bn = nn.BatchNorm2d(stages[3])
        self.classifier = nn.Linear(stages[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.units(self.head_conv(x))
        x = F.avg_pool2d(F.relu(self.last_bn(x)), 8)
        return self.classifier(x.flatten(1))
