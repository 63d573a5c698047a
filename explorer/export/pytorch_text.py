"""The text an exported PyTorch file holds verbatim: its docstring, the shared classes (the
unit, option A's shortcut, the attention modules) and the initialisation and entry point.
explorer/export/pytorch.py writes the network's own class around them.
"""
from __future__ import annotations

HEADER = '''\
"""{title}: standalone PyTorch code written by ResNet Explorer.

It needs torch and nothing else. build_model() returns the network in training mode, initialised
as torchvision initialises ResNets. A state_dict saved from ResNet Explorer's
explorer.build_model(cfg) for the config below loads into it with strict=True (module names
follow torchvision: conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc).

Run this file to push one random {input_desc} image through the network.
"""
import torch
import torch.nn.functional as F
from torch import nn

'''

SHARED = '''
class ZeroPadShortcut(nn.Module):
    """Shortcut option A (He et al. 2015): identity with strided subsampling and zero-padded
    extra channels; no parameters."""

    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_ch - self.in_ch))  # zeros after the C channels


class ResidualUnit(nn.Module):
    """One residual unit, y = post(F(pre(x)) + shortcut), or y = F(x) in a plain network.

    pre:        ops before the split (a pre-activation unit's BN / ReLU, He et al. 2016, Fig. 4e);
                a shape-changing shortcut reads their output, an identity shortcut the raw x
    branch:     F(x), the residual function: weight layers (convs) and their BN / ReLU
    post:       ops after the addition (e.g. the original unit's ReLU, Fig. 4a)
    downsample: the shortcut where the shape changes: a 1x1 projection W_s (options B, C) or
                ZeroPadShortcut (option A); None is the identity
    zero_init:  the BN whose gamma starts at zero, so the unit starts as an identity
    """

    def __init__(self, pre=(), branch=(), post=(), downsample=None, residual=True, zero_init=None):
        super().__init__()
        for name, module in (*pre, *branch, *post):
            self.add_module(name, module)
        self.downsample = downsample
        self.residual = residual
        self.zero_init = zero_init
        self._pre = [name for name, _ in pre]
        self._branch = [name for name, _ in branch]
        self._post = [name for name, _ in post]

    def forward(self, x):
        pre = x
        for name in self._pre:
            pre = getattr(self, name)(pre)
        out = pre
        for name in self._branch:
            out = getattr(self, name)(out)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(pre))
        for name in self._post:
            out = getattr(self, name)(out)
        return out

'''

# The header's word on module names, and what replaces it for the timm variants' extra modules.
TORCHVISION_NAMES = "follow torchvision: conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc)."
TIMM_NAMES = ("follow torchvision: conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc; and timm\n"
              "for a deep stem conv1.0-6, an average-pool shortcut downsample.0-2, attention se).")

# Only for networks with channel attention: the unit takes `se` and applies it to F(x) before
# the addition, and the gate modules are defined (names as timm's, so state_dicts match).
SE_ARG = (("    zero_init:  the BN whose gamma starts at zero, so the unit starts as an identity\n",
            "    zero_init:  the BN whose gamma starts at zero, so the unit starts as an identity\n"
            "    se:         channel attention on F(x) before the addition (SEModule or EcaModule), or None\n"),
           ("residual=True, zero_init=None):", "residual=True, zero_init=None, se=None):"),
           ("        self.downsample = downsample\n", "        self.se = se\n        self.downsample = downsample\n"),
           ("            out = getattr(self, name)(out)\n        if self.residual:",
            "            out = getattr(self, name)(out)\n        if self.se is not None:\n"
            "            out = self.se(out)  # s(F(x)) * F(x)\n        if self.residual:"))

ATTENTION = {
    "se": '''
class SEModule(nn.Module):
    """Squeeze-excitation (Hu et al. 2018): global mean -> 1x1 conv to rd channels -> ReLU ->
    1x1 conv back -> sigmoid gate, which scales each channel of x."""

    def __init__(self, channels, rd):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): the squeeze
        s = self.fc2(self.act(self.bn(self.fc1(s))))  # (B, C, 1, 1): the excitation
        return x * self.gate(s)

''',
    "eca": '''
class EcaModule(nn.Module):
    """Efficient channel attention (Wang et al. 2020): global mean -> 1-D conv across the
    channels (no bias) -> sigmoid gate, which scales each channel of x."""

    def __init__(self, kernel):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)  # (B, 1, C): the channels as a sequence
        y = self.gate(self.conv(y)).view(x.shape[0], -1, 1, 1)  # (B, C, 1, 1)
        return x * y.expand_as(x)

''',
}

FOOTER = '''

def init_weights(model):
    """torchvision's initialisation: Kaiming-normal (fan_out) convs, BN gamma 1 / beta 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    # zero_init_residual: each branch's last BN starts at zero (Goyal et al. 2017)
    for m in model.modules():
        if isinstance(m, ResidualUnit) and m.zero_init is not None:
            nn.init.zeros_(getattr(m, m.zero_init).weight)


def build_model():
    """The network of the config at the top of this file."""
    model = ResNet()
    init_weights(model)
    return model


if __name__ == "__main__":
    model = build_model().eval()
    x = torch.randn(1, {in_channels}, {size}, {size})  # (B, C, H, W)
    with torch.no_grad():
        print(model(x).shape)  # (1, {num_classes})
'''
