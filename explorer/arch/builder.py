"""build_model(cfg): the single source of truth. Every view derives from the module built here.

Module names follow torchvision (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc) so
that torchvision checkpoints load with strict=True where the architecture is torchvision's.
Within a unit, layer j owns conv{j}, bn{j} and relu{j} wherever the config puts them.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from explorer.arch.clone import Made
from explorer.arch.config import ArchConfig
from explorer.arch.plan import LayerSpec, StemSpec, UnitSpec, last_branch_bn, make_plan


class ZeroPadShortcut(nn.Module):
    """Paper option A: identity with strided subsampling and zero-padded extra channels."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_ch - self.in_ch))  # zeros after the C channels

    def extra_repr(self) -> str:
        return f"{self.in_ch} -> {self.out_ch}, stride={self.stride}"


class SEModule(nn.Module):
    """Squeeze-excitation (Hu et al. 2018), as timm writes it: global mean -> 1x1 conv to `rd`
    channels -> ReLU -> 1x1 conv back -> sigmoid gate, which scales each channel of x."""

    def __init__(self, channels: int, rd: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
        self.bn = nn.Identity()  # timm's slot for an optional norm: none, as in its SE ResNets
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): the squeeze
        s = self.fc2(self.act(self.bn(self.fc1(s))))  # (B, C, 1, 1): the excitation
        return x * self.gate(s)


class EcaModule(nn.Module):
    """Efficient channel attention (Wang et al. 2020), as timm writes it: global mean -> a 1-D
    conv across the channels (kernel from the channel count, no bias) -> sigmoid gate."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)  # (B, 1, C): channels as a 1-D sequence
        y = self.gate(self.conv(y)).view(x.shape[0], -1, 1, 1)  # (B, C, 1, 1)
        return x * y.expand_as(x)


class ResidualUnit(nn.Module):
    """y = post(F(pre(x)) + shortcut(x)); with `residual` False, y = F(x) (a plain block).

    `pre` is the first layer's pre-conv ops (pre-activation). A shortcut that changes the shape
    (projection or zero-pad) takes the pre-activated input, an identity the raw x (He et al.
    2016, Fig. 4e and appendix: "these projection shortcuts are also with pre-activation"; the
    authors' resnet-pre-act.lua and fb.resnet.torch preresnet.lua do the same for option A).
    The network's first unit has no `pre`: the stem's BN/ReLU is its pre-activation.
    """

    def __init__(self, spec: UnitSpec, use_bn: bool, made: Made | None = None) -> None:
        super().__init__()
        made = made or Made()
        self.residual = spec.residual
        self.shortcut_kind = spec.shortcut
        self._pre: list[str] = []       # names applied before the split
        self._branch: list[str] = []    # names of F, after pre
        self._post: list[str] = []      # names applied after the addition
        last = len(spec.layers)
        for j, layer in enumerate(spec.layers, start=1):
            target = self._pre if j == 1 else self._branch
            self._add_ops(j, layer.pre, layer.in_ch, target, made)
            self.add_module(f"conv{j}", _conv(layer, not use_bn, made))
            self._branch.append(f"conv{j}")
            self._add_ops(j, layer.post, layer.out_ch, self._branch, made)
        self._add_ops(last, spec.post_add, spec.out_ch, self._post, made)

        # Channel attention on F(x), right before the addition (timm's attribute name `se`).
        self.se: nn.Module | None = (SEModule(spec.out_ch, spec.attention_width) if spec.attention == "se" else
                                     EcaModule(spec.attention_width) if spec.attention == "eca" else None)
        self.downsample: nn.Module | None = None
        if spec.shortcut == "projection":
            self.downsample = _projection(spec, use_bn, made)
        elif spec.shortcut == "zero_pad":
            self.downsample = ZeroPadShortcut(spec.in_ch, spec.out_ch, spec.stride)
        # In-place add is safe unless F ends in a ReLU (its backward needs its own output); the
        # attention's product is a fresh tensor no backward reads.
        self._add_inplace = self.se is not None or not (self._branch and self._branch[-1].startswith("relu"))

    def _add_ops(self, j: int, ops: tuple[str, ...], ch: int, target: list[str], made: Made) -> None:
        for op in ops:
            name = f"{op}{j}"
            if op == "bn":
                self.add_module(name, made.leaf(nn.BatchNorm2d, ch))
            else:
                # In place only on a fresh tensor: never on the unit's input x (needed by the
                # shortcut), so a ReLU that opens the pre-activation ops is out of place. After
                # the addition the op acts on the fresh sum, so it may be in place too.
                self.add_module(name, nn.ReLU(inplace=bool(target) or target is self._post))
            target.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = x
        for name in self._pre:
            pre = getattr(self, name)(pre)
        out = pre
        for name in self._branch:
            out = getattr(self, name)(out)
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            identity = x if self.downsample is None else self.downsample(pre)
            if self._add_inplace:
                out += identity
            else:
                out = out + identity
        for name in self._post:
            out = getattr(self, name)(out)
        return out


class ResNet(nn.Module):
    """Stem -> stages of units -> (final pre-activation ops) -> global pool -> fc."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        plan = make_plan(cfg)
        use_bn = cfg.bn_position != "none"
        self.config = cfg
        stem = plan.stem
        self.conv1 = _stem_convs(stem, use_bn)
        self.bn1 = nn.BatchNorm2d(stem.out_ch) if use_bn else None
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = (nn.MaxPool2d(stem.pool_kernel, stride=stem.pool_stride, padding=stem.pool_kernel // 2)
                        if stem.pool_kernel else None)
        self.stage_names: list[str] = []
        made = Made()  # units by spec (less name and place), BN and convs by arguments
        for stage_idx, units in enumerate(plan.stages):
            name = f"layer{stage_idx + 1}"
            self.add_module(name, nn.Sequential(*(_unit(u, use_bn, made) for u in units)))
            self.stage_names.append(name)
        # Pre-activation nets apply the pre-conv ops once more before pooling (He et al. 2016).
        self.final_bn = nn.BatchNorm2d(plan.out_ch) if "bn" in plan.final_ops else None
        self.final_relu = nn.ReLU(inplace=True) if "relu" in plan.final_ops else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(plan.out_ch, cfg.num_classes)
        _init_weights(self, plan, cfg.zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # (B, stem_width, H', W')
        if self.bn1 is not None:
            x = self.bn1(x)
        x = self.relu(x)
        if self.maxpool is not None:
            x = self.maxpool(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        if self.final_bn is not None:
            x = self.final_bn(x)
        if self.final_relu is not None:
            x = self.final_relu(x)
        x = self.avgpool(x)  # (B, C, 1, 1)
        x = torch.flatten(x, 1)
        return self.fc(x)  # (B, num_classes)


def _stem_convs(stem: StemSpec, use_bn: bool) -> nn.Module:
    """The stem's conv; a deep stem's three 3x3 convs as one Sequential with BN-ReLU between
    them (timm's layout and indices: 0 conv, 1 BN, 2 ReLU, 3 conv, 4 BN, 5 ReLU, 6 conv; the BN
    slots are Identity without BN, so the indices stay)."""
    if len(stem.convs) == 1:
        return nn.Conv2d(stem.in_ch, stem.out_ch, stem.kernel, stride=stem.stride,
                         padding=stem.kernel // 2, bias=not use_bn)
    mods: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(stem.convs):
        if i:
            mods += [nn.BatchNorm2d(c_in) if use_bn else nn.Identity(), nn.ReLU(inplace=True)]
        mods.append(nn.Conv2d(c_in, c_out, 3, stride=stem.stride if i == 0 else 1, padding=1, bias=not use_bn))
    return nn.Sequential(*mods)


def _projection(spec: UnitSpec, use_bn: bool, made: Made) -> nn.Sequential:
    """A projection shortcut: 1x1 conv (+ BN where the plan has it). With an average pool
    (ResNet-D): pool -> 1x1 conv at stride 1 (-> BN), at timm's indices 0, 1, 2; a stride-1
    projection then has an Identity where the pool would be."""
    proj: list[nn.Module] = []
    if spec.shortcut_pool:
        proj.append(nn.AvgPool2d(2, stride=spec.shortcut_pool, ceil_mode=True, count_include_pad=False)
                    if spec.shortcut_pool > 1 else nn.Identity())
    stride = 1 if spec.shortcut_pool else spec.stride
    proj.append(made.leaf(nn.Conv2d, spec.in_ch, spec.out_ch, 1, stride=stride, bias=not use_bn))
    if spec.shortcut_bn:  # none in pre-activation units (see plan.py)
        proj.append(made.leaf(nn.BatchNorm2d, spec.out_ch))
    return nn.Sequential(*proj)


def _unit(spec: UnitSpec, use_bn: bool, made: Made) -> ResidualUnit:
    """The unit `spec` describes; on meta, one equal to a unit built before is a copy of it
    (explorer.arch.clone: no values to initialise, so the same module, made faster)."""
    return made.get((_unit_key(spec), use_bn), lambda: ResidualUnit(spec, use_bn, made))


def _unit_key(spec: UnitSpec) -> tuple:
    """Every field of `spec` and of its layers but the name and the place (sizes, block index):
    units with equal keys are equal modules."""
    layers = tuple(tuple(getattr(layer, f) for f in _LAYER_FIELDS) for layer in spec.layers)
    return layers, *(getattr(spec, f) for f in _UNIT_FIELDS)


_PLACE = frozenset({"name", "in_size", "out_size", "block_idx", "layers"})
_LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(LayerSpec) if f.name not in _PLACE)
_UNIT_FIELDS = tuple(f.name for f in dataclasses.fields(UnitSpec) if f.name not in _PLACE)


def _conv(layer: LayerSpec, bias: bool, made: Made) -> nn.Conv2d:
    return made.leaf(nn.Conv2d, layer.in_ch, layer.out_ch, layer.kernel, stride=layer.stride,
                     padding=layer.kernel // 2, groups=layer.groups, bias=bias)


def _init_weights(model: ResNet, plan, zero_init_residual: bool) -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out) convs, BN gamma 1 / beta 0. SE's 1x1
    convs are convs like any other (timm draws them the same way); their biases start at zero, where
    timm keeps PyTorch's default. ECA's 1-D conv keeps PyTorch's default, as in timm."""
    if model.fc.weight.is_meta:
        return  # meta tensors hold no values: initialising them would only cost time
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if not zero_init_residual:
        return
    # Zero the last BN inside each branch so every unit starts as an identity (Goyal et al. 2017).
    for stage_name, units in zip(model.stage_names, plan.stages):
        stage = getattr(model, stage_name)
        for unit_idx, spec in enumerate(units):
            j = last_branch_bn(spec) if spec.residual else None
            if j is not None:
                nn.init.zeros_(getattr(stage[unit_idx], f"bn{j}").weight)


def build_model(cfg: ArchConfig) -> ResNet:
    """Build the network a config describes.

    Args:
        cfg: a validated ArchConfig (e.g. ``explorer.preset("resnet50")``).

    Returns:
        A ``torch.nn.Module`` in training mode, initialised as torchvision does. Works under
        ``with torch.device("meta"):`` for counting and shape work without allocating weights.
    """
    if not isinstance(cfg, ArchConfig):
        raise TypeError(f"build_model expects an ArchConfig, got {type(cfg).__name__}")
    return ResNet(cfg)
