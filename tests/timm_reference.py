"""An independent transcription of timm 1.0's ResNet (timm/models/resnet.py and the attention
modules of timm/layers), written from timm's published structure in timm's own terms (its
`stem_width` is the width of the first stem convs, its blocks take `planes`), not from this
project's builder. tests/test_timm.py loads state_dicts between it and explorer.build_model.

Covered: BasicBlock and Bottleneck (cardinality, base_width), the stems ("" = 7x7, "deep",
"deep_tiered"), downsample_conv and downsample_avg (avg_down), SEModule and EcaModule. Left out
(no preset here uses them): dilation, anti-aliasing, drop-block, drop-path, reduce_first.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class SEModule(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        x_se = x.mean((2, 3), keepdim=True)
        x_se = self.fc1(x_se)
        x_se = self.act(self.bn(x_se))
        x_se = self.fc2(x_se)
        return x * self.gate(x_se)


class EcaModule(nn.Module):
    def __init__(self, channels: int, gamma: int = 2, beta: int = 1) -> None:
        super().__init__()
        t = int(abs(math.log(channels, 2) + beta) / gamma)
        kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)
        y = self.conv(y)
        y = self.gate(y).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)


def create_attn(attn_layer: str | None, channels: int) -> nn.Module | None:
    if attn_layer == "se":
        return SEModule(channels)
    if attn_layer == "eca":
        return EcaModule(channels)
    return None


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, cardinality=1, base_width=64,
                 attn_layer=None):
        super().__init__()
        assert cardinality == 1 and base_width == 64
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, outplanes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outplanes)
        self.se = create_attn(attn_layer, outplanes)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        if self.se is not None:
            x = self.se(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act2(x)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, cardinality=1, base_width=64,
                 attn_layer=None):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64)) * cardinality)
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, groups=cardinality,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.se = create_attn(attn_layer, outplanes)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


def downsample_conv(in_channels, out_channels, stride):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, padding=0, bias=False),
                         nn.BatchNorm2d(out_channels))


def downsample_avg(in_channels, out_channels, stride):
    if stride == 1:
        pool = nn.Identity()
    else:
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
    return nn.Sequential(pool, nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, bias=False),
                         nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, in_chans=3, cardinality=1, base_width=64,
                 stem_width=64, stem_type="", avg_down=False, attn_layer=None):
        super().__init__()
        deep_stem = "deep" in stem_type
        inplanes = stem_width * 2 if deep_stem else 64
        if deep_stem:
            stem_chs = (stem_width, stem_width)
            if "tiered" in stem_type:
                stem_chs = (3 * (stem_width // 4), stem_width)
            self.conv1 = nn.Sequential(
                nn.Conv2d(in_chans, stem_chs[0], 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(stem_chs[0]),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_chs[0], stem_chs[1], 3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(stem_chs[1]),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_chs[1], inplanes, 3, stride=1, padding=1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(in_chans, inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for stage_idx, (planes, num_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if stage_idx == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                make = downsample_avg if avg_down else downsample_conv
                downsample = make(inplanes, planes * block.expansion, stride)
            blocks = []
            for block_idx in range(num_blocks):
                blocks.append(block(inplanes, planes, stride if block_idx == 0 else 1,
                                    downsample if block_idx == 0 else None, cardinality=cardinality,
                                    base_width=base_width, attn_layer=attn_layer))
                inplanes = planes * block.expansion
            self.add_module(f"layer{stage_idx + 1}", nn.Sequential(*blocks))
        self.num_features = 512 * block.expansion
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.global_pool(x), 1)
        return self.fc(x)


# The model registry's arguments (timm/models/resnet.py, timm 1.0), in timm's terms.
TIMM_MODELS = {
    "resnet18d": dict(block=BasicBlock, layers=[2, 2, 2, 2], stem_width=32, stem_type="deep", avg_down=True),
    "resnet34d": dict(block=BasicBlock, layers=[3, 4, 6, 3], stem_width=32, stem_type="deep", avg_down=True),
    "resnet26d": dict(block=Bottleneck, layers=[2, 2, 2, 2], stem_width=32, stem_type="deep", avg_down=True),
    "resnet50c": dict(block=Bottleneck, layers=[3, 4, 6, 3], stem_width=32, stem_type="deep"),
    "resnet50d": dict(block=Bottleneck, layers=[3, 4, 6, 3], stem_width=32, stem_type="deep", avg_down=True),
    "resnet50s": dict(block=Bottleneck, layers=[3, 4, 6, 3], stem_width=64, stem_type="deep"),
    "resnet50t": dict(block=Bottleneck, layers=[3, 4, 6, 3], stem_width=32, stem_type="deep_tiered",
                      avg_down=True),
    "resnet101d": dict(block=Bottleneck, layers=[3, 4, 23, 3], stem_width=32, stem_type="deep", avg_down=True),
    "resnet152d": dict(block=Bottleneck, layers=[3, 8, 36, 3], stem_width=32, stem_type="deep", avg_down=True),
    "seresnet50": dict(block=Bottleneck, layers=[3, 4, 6, 3], attn_layer="se"),
    "seresnext50_32x4d": dict(block=Bottleneck, layers=[3, 4, 6, 3], cardinality=32, base_width=4,
                              attn_layer="se"),
    "ecaresnet50d": dict(block=Bottleneck, layers=[3, 4, 6, 3], stem_width=32, stem_type="deep", avg_down=True,
                         attn_layer="eca"),
}


def create_model(name: str, **kwargs) -> ResNet:
    return ResNet(**{**TIMM_MODELS[name], **kwargs})
