"""Standalone PyTorch code for a config: one readable .py file that imports torch alone.

The code is written by walking the module `build_model` builds (on the meta device, so no
weights are made) and reading each module's own settings; the plan only supplies comments
(layer roles, shapes). So the file has the same modules under the same names as the built
network, and a state_dict saved from `explorer.build_model(cfg)` loads into it with strict=True.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import torch
from torch import nn

from explorer.arch.builder import EcaModule, ResidualUnit, ResNet, SEModule, ZeroPadShortcut, build_model
from explorer.arch.config import ArchConfig
from explorer.arch.plan import Plan, UnitSpec, last_branch_bn, make_plan
from explorer.export.limits import ExportError
from explorer.export.pytorch_text import ATTENTION, FOOTER, HEADER, SE_ARG, SHARED, TIMM_NAMES, TORCHVISION_NAMES
from explorer.labels import side, square
from explorer.vocab import ATTENTION_TEXT, POOLED_PROJECTION, SHORTCUT_TEXT

INDENT = "    "


def to_pytorch_code(cfg: ArchConfig) -> str:
    """Standalone source of a module defining `build_model()` for `cfg`; imports torch only."""
    plan = make_plan(cfg)
    with torch.device("meta"):
        model = build_model(cfg)
    header = HEADER.format(
        title=_comment_safe(cfg.name) or "ResNet",
        input_desc=f"{cfg.in_channels}x{cfg.input_size}x{cfg.input_size}",
    )
    if (cfg.stem_type, cfg.avg_down, cfg.attention) != ("single", False, "none"):
        header = header.replace(TORCHVISION_NAMES, TIMM_NAMES)
    parts = [_config_comment(cfg), header, _shared(cfg), _network_class(model, plan, cfg),
             FOOTER.format(in_channels=cfg.in_channels, size=cfg.input_size, num_classes=cfg.num_classes)]
    return "".join(parts)


def _shared(cfg: ArchConfig) -> str:
    """The unit class (and the attention module, if the network has one)."""
    if cfg.attention == "none":
        return SHARED
    text = SHARED
    for old, new in SE_ARG:
        text = text.replace(old, new)
    return text + ATTENTION[cfg.attention]


def _comment_safe(text: str) -> str:
    return "".join(ch if ch.isprintable() and ch not in "\"'\\" else "_" for ch in text)


def _config_comment(cfg: ArchConfig) -> str:
    """The config as JSON, one key a line, each line commented out."""
    items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in cfg.to_dict().items()]
    body = "{\n" + ",\n".join(items) + "\n}"
    lines = ["# Config (ResNet Explorer JSON; strip the '# ' to load it again):"]
    lines += ["# " + line for line in body.splitlines()]
    return "\n".join(lines) + "\n"


def _network_class(model: ResNet, plan: Plan, cfg: ArchConfig) -> str:
    """class ResNet: the stem, the stages unit by unit, the head; forward in the builder's order."""
    i1, i2 = INDENT, INDENT * 2
    init = [f"{i1}def __init__(self):", f"{i2}super().__init__()"]
    fwd = [f"{i1}def forward(self, x):  # x: (B, {cfg.in_channels}, {cfg.input_size}, {cfg.input_size})"]
    stem = [("conv1", model.conv1), ("bn1", model.bn1), ("relu", model.relu), ("maxpool", model.maxpool)]
    for name, module in stem:
        if isinstance(module, nn.Sequential):  # a deep stem (He et al. 2019, ResNet-C)
            convs = [m for m in module if isinstance(m, nn.Conv2d)]
            init.append(f"{i2}# deep stem (He et al. 2019, ResNet-C): 3x3 convs of "
                        + ", ".join(str(m.out_channels) for m in convs) + " channels")
            init += _lines(f"self.{name} = ", module, i2)
            fwd.append(f"{i2}x = self.{name}(x)")
        elif module is not None:
            init.append(f"{i2}self.{name} = {module_code(module)}")
            fwd.append(f"{i2}x = self.{name}(x)")
    fwd[-1] += f"  # (B, {plan.stem_out}, {plan.stem_size}, {plan.stem_size})"
    for stage_name, units in zip(model.stage_names, plan.stages):
        stage = getattr(model, stage_name)
        if not isinstance(stage, nn.Sequential) or len(stage) != len(units):
            raise ExportError(f"{stage_name} is not a sequence of the plan's {len(units)} units")
        init.append("")
        init += _stage_code(stage_name, stage, units, cfg.zero_init_residual)
        last = units[-1]
        fwd.append(f"{i2}x = self.{stage_name}(x)  # (B, {last.out_ch}, {last.out_size}, {last.out_size})")
    init.append("")
    head = [("final_bn", model.final_bn), ("final_relu", model.final_relu),
            ("avgpool", model.avgpool), ("fc", model.fc)]
    if model.final_bn is not None or model.final_relu is not None:
        init.append(f"{i2}# pre-activation: the last unit's output gets the pre-conv ops once more "
                    "(He et al. 2016)")
    for name, module in head:
        if module is not None:
            init.append(f"{i2}self.{name} = {module_code(module)}")
    for name, module in head[:2]:
        if module is not None:
            fwd.append(f"{i2}x = self.{name}(x)")
    fwd += [f"{i2}x = self.avgpool(x)  # (B, {plan.out_ch}, 1, 1)",
            f"{i2}x = torch.flatten(x, 1)",
            f"{i2}return self.fc(x)  # (B, {cfg.num_classes})"]
    kind = "residual units" if any(u.residual for units in plan.stages for u in units) else "plain blocks"
    doc = f'{i1}"""Stem -> {len(plan.stages)} stages of {kind} -> global average pool -> fc."""'
    return "\n".join(["", "class ResNet(nn.Module):", doc, "", *init, "", *fwd]) + "\n\n"


def _stage_code(stage_name: str, stage: nn.Sequential, units: tuple[UnitSpec, ...],
                zero_init: bool) -> list[str]:
    """self.layerN = nn.Sequential(...), runs of identical units written once with a loop."""
    i2, i3 = INDENT * 2, INDENT * 3
    codes = [_unit_code(unit, spec, zero_init) for unit, spec in zip(stage, units)]
    lines = [f"{i2}self.{stage_name} = nn.Sequential("]
    start = 0
    while start < len(codes):
        end = start + 1
        while end < len(codes) and codes[end] == codes[start]:
            end += 1
        spec, count = units[start], end - start
        if count == 1:
            lines.append(f"{i3}# {spec.name}: {_unit_caption(spec)}")
            lines += [i3 + line for line in codes[start]]
            lines[-1] += ","
        else:
            lines.append(f"{i3}# {spec.name} to {units[end - 1].name}, {count} identical units: "
                         f"{_unit_caption(spec)}")
            lines += [i3 + "*(" + codes[start][0]] + [i3 + line for line in codes[start][1:]]
            lines[-1] += f" for _ in range({count})),"
        start = end
    lines.append(f"{i2})")
    return lines


def _unit_caption(spec: UnitSpec) -> str:
    size = (f"{spec.in_size}x{spec.in_size}" if spec.in_size == spec.out_size
            else f"{spec.in_size}x{spec.in_size} -> {spec.out_size}x{spec.out_size}")
    words = POOLED_PROJECTION if spec.shortcut_pool > 1 else SHORTCUT_TEXT[spec.shortcut]
    gate = f", {ATTENTION_TEXT[spec.attention][0]}" if spec.attention != "none" else ""
    return f"{spec.in_ch} -> {spec.out_ch} channels, {size}, {words.phrase}{gate}"


def _lines(head: str, seq: nn.Sequential, indent: str) -> list[str]:
    """`head` + nn.Sequential(...) written one module a line."""
    return ([f"{indent}{head}nn.Sequential("] + [f"{indent}{INDENT}{module_code(m)}," for m in seq]
            + [f"{indent})"])


def _unit_code(unit: nn.Module, spec: UnitSpec, zero_init: bool) -> list[str]:
    """ResidualUnit(...) for one built unit, as lines without the outer indent."""
    if not isinstance(unit, ResidualUnit):
        raise ExportError(f"{spec.name} is a {type(unit).__name__}, not a residual unit")
    roles = {f"conv{j}": layer.role for j, layer in enumerate(spec.layers, start=1)}
    lines = ["ResidualUnit("]
    for arg, names in (("pre", unit._pre), ("branch", unit._branch), ("post", unit._post)):
        if not names:
            continue
        ops = [f"({json.dumps(name)}, {module_code(getattr(unit, name))})" for name in names]
        if len(ops) == 1 and names[0] not in roles:
            lines.append(f"{INDENT}{arg}=[{ops[0]}],")
            continue
        lines.append(f"{INDENT}{arg}=[")
        for name, op in zip(names, ops):
            role = f"  # {roles[name]}" if name in roles else ""
            lines.append(f"{INDENT * 2}{op},{role}")
        lines.append(f"{INDENT}],")
    if getattr(unit, "se", None) is not None:
        lines.append(f"{INDENT}se={module_code(unit.se)},")
    if isinstance(unit.downsample, nn.Sequential) and len(unit.downsample) > 2:  # pool, conv, BN
        lines += _lines("downsample=", unit.downsample, INDENT)
        lines[-1] += ","
    elif unit.downsample is not None:
        lines.append(f"{INDENT}downsample={module_code(unit.downsample)},")
    if not unit.residual:
        lines.append(f"{INDENT}residual=False,")
    bn = last_branch_bn(spec) if zero_init and spec.residual else None
    if bn is not None:
        lines.append(f'{INDENT}zero_init="bn{bn}",')
    lines.append(")")
    return lines


def _conv(m: nn.Conv2d) -> str:
    if square(m.dilation) != 1 or m.padding_mode != "zeros":
        raise ExportError(f"a conv with dilation {m.dilation} / padding_mode {m.padding_mode!r}")
    args = [str(m.in_channels), str(m.out_channels), f"kernel_size={square(m.kernel_size)!r}"]
    for key, default in (("stride", 1), ("padding", 0), ("groups", 1)):
        value = square(getattr(m, key))
        if value != default:
            args.append(f"{key}={value!r}")
    if m.bias is None:
        args.append("bias=False")
    return f"nn.Conv2d({', '.join(args)})"


def _bn(m: nn.BatchNorm2d) -> str:
    args = [str(m.num_features)]
    for key, default in (("eps", 1e-5), ("momentum", 0.1), ("affine", True), ("track_running_stats", True)):
        if getattr(m, key) != default:
            args.append(f"{key}={getattr(m, key)!r}")
    return f"nn.BatchNorm2d({', '.join(args)})"


def _linear(m: nn.Linear) -> str:
    return f"nn.Linear({m.in_features}, {m.out_features}{'' if m.bias is not None else ', bias=False'})"


def _maxpool(m: nn.MaxPool2d) -> str:
    if square(m.dilation) != 1 or m.ceil_mode or m.return_indices:
        raise ExportError("a max-pool with dilation, ceil_mode or return_indices")
    return (f"nn.MaxPool2d(kernel_size={square(m.kernel_size)!r}, stride={square(m.stride)!r}, "
            f"padding={square(m.padding)!r})")


def _avgpool(m: nn.AvgPool2d) -> str:
    if square(m.padding) != 0 or m.divisor_override is not None:
        raise ExportError("an average pool with padding or a divisor override")
    return (f"nn.AvgPool2d({square(m.kernel_size)!r}, stride={square(m.stride)!r}, ceil_mode={m.ceil_mode}, "
            f"count_include_pad={m.count_include_pad})")


def _se(m: SEModule) -> str:
    if not (type(m.bn) is nn.Identity and m.fc1.bias is not None and m.fc2.bias is not None):
        raise ExportError("a squeeze-excitation module with a norm or without biases")
    return f"SEModule({m.fc1.in_channels}, {m.fc1.out_channels})"


def _eca(m: EcaModule) -> str:
    k = side(m.conv.kernel_size)
    if side(m.conv.padding) != (k - 1) // 2 or m.conv.bias is not None:
        raise ExportError("an ECA conv with other padding or a bias")
    return f"EcaModule({k})"


def _sequential(m: nn.Sequential) -> str:
    return f"nn.Sequential({', '.join(module_code(child) for child in m)})"


# Exact types: a subclass could change what the module computes.
_WRITERS: dict[type, Callable[[nn.Module], str]] = {
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _bn,
    nn.ReLU: lambda m: "nn.ReLU(inplace=True)" if m.inplace else "nn.ReLU()",
    nn.MaxPool2d: _maxpool,
    nn.AdaptiveAvgPool2d: lambda m: f"nn.AdaptiveAvgPool2d({m.output_size!r})",
    nn.Linear: _linear,
    nn.Sequential: _sequential,
    nn.Identity: lambda m: "nn.Identity()",
    ZeroPadShortcut: lambda m: f"ZeroPadShortcut({m.in_ch}, {m.out_ch}, stride={m.stride})",
    nn.AvgPool2d: _avgpool,
    SEModule: _se,
    EcaModule: _eca,
}


def module_code(module: nn.Module) -> str:
    """The constructor call that makes an equal module, e.g. nn.Conv2d(64, 64, kernel_size=3, ...)."""
    writer = _WRITERS.get(type(module))
    if writer is None:
        raise ExportError(f"no code writer for {type(module).__name__}")
    return writer(module)
