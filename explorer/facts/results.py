"""The facts of a network as typed results: `Summary` and `Costs`.

Frozen records that every view reads by attribute: the CLI's text, the app's Summary tab,
Compare. `to_dict()` is the JSON document (`summary --json`, downloads, the run store) and
`from_dict()` reads it back: `Summary.from_dict(s.to_dict()) == s`. No torch here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from explorer.arch.config import ArchConfig
from explorer.arch.presets import PresetInfo
from explorer.vocab import Dtype, ShortcutKind

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShortcutCounts:
    """Residual units by shortcut kind."""

    identity: int = 0
    zero_pad: int = 0
    projection: int = 0

    @property
    def total(self) -> int:
        return self.identity + self.zero_pad + self.projection

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> "ShortcutCounts":
        return cls(**d)


@dataclass(frozen=True)
class StageRow:
    """One stage of the summary: its units, parameters, MACs and output shape."""

    name: str               # "layer2"
    units: int              # residual units (or plain blocks)
    params: int
    macs: int               # multiply-adds per image
    out_shape: Shape        # (C, H, W) leaving the stage

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "units": self.units, "params": self.params, "macs": self.macs,
                "out_shape": list(self.out_shape)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StageRow":
        return cls(d["name"], d["units"], d["params"], d["macs"], tuple(d["out_shape"]))


@dataclass(frozen=True)
class UnitCheck:
    """The shape check of one residual unit: x and F(x), and the shortcut that joins them."""

    name: str               # module path, "layer2.0"
    stage: str              # "layer2"
    layers: int             # weight layers the shortcut spans
    in_shape: Shape         # (C, H, W) of x
    out_shape: Shape        # (C, H, W) of F(x) and of the sum
    shortcut: ShortcutKind
    shortcut_params: int
    shortcut_macs: int
    branch_params: int      # parameters of F (and of ops after the addition)
    reason: str             # why the shortcut is what it is

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(in_shape=list(self.in_shape), out_shape=list(self.out_shape))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UnitCheck":
        return cls(**{**d, "in_shape": tuple(d["in_shape"]), "out_shape": tuple(d["out_shape"])})


@dataclass(frozen=True)
class Published:
    """The published figures of the preset a network is."""

    preset: str
    info: PresetInfo

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, **asdict(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Published":
        rest = {k: v for k, v in d.items() if k != "preset"}
        return cls(d["preset"], PresetInfo(**rest))


@dataclass(frozen=True)
class Summary:
    """Parameters, MACs, stages and per-unit shape checks of one network (batch 1)."""

    config: ArchConfig
    params: int
    trainable_params: int
    macs: int                       # conv + fc multiply-adds at input_size, batch 1
    input_shape: Shape              # (1, C, H, W)
    output_shape: Shape             # (1, num_classes)
    depth: int                      # weight layers on the main path (convs + fc)
    skip_span: int                  # weight layers per shortcut, None resolved; 0 = plain
    residual_units: int
    shortcuts: ShortcutCounts
    projection_params: int
    projection_macs: int
    stem_params: int
    head_params: int                # final BN (pre-activation) + fc
    stages: tuple[StageRow, ...]
    units: tuple[UnitCheck, ...]    # residual units only
    warnings: tuple[str, ...]
    published: Published | None     # the preset this network is, if it is one

    @property
    def name(self) -> str:
        return self.config.name

    def to_dict(self) -> dict[str, Any]:
        """The `summary --json` document."""
        return {
            "config": self.config.to_dict(), "name": self.name, "params": self.params,
            "trainable_params": self.trainable_params, "macs": self.macs,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "depth": self.depth, "skip_span": self.skip_span, "residual_units": self.residual_units,
            "shortcuts": self.shortcuts.to_dict(), "projection_params": self.projection_params,
            "projection_macs": self.projection_macs, "stem_params": self.stem_params,
            "head_params": self.head_params, "stages": [s.to_dict() for s in self.stages],
            "units": [u.to_dict() for u in self.units], "warnings": list(self.warnings),
            "published": self.published.to_dict() if self.published else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Summary":
        return cls(
            ArchConfig.from_dict(d["config"]), d["params"], d["trainable_params"], d["macs"],
            tuple(d["input_shape"]), tuple(d["output_shape"]), d["depth"], d["skip_span"],
            d["residual_units"], ShortcutCounts.from_dict(d["shortcuts"]), d["projection_params"],
            d["projection_macs"], d["stem_params"], d["head_params"],
            tuple(StageRow.from_dict(s) for s in d["stages"]),
            tuple(UnitCheck.from_dict(u) for u in d["units"]), tuple(d["warnings"]),
            Published.from_dict(d["published"]) if d.get("published") else None,
        )


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field at the output of the stem, a stage or the head, along the main path."""

    name: str               # "stem", "layer1", ..., "head"
    receptive_field: int    # input pixels one output unit sees
    jump: int               # input pixels between neighbouring outputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReceptiveField":
        return cls(**d)


@dataclass(frozen=True)
class Costs:
    """Memory, receptive field, depth and shortcut counts of one network at a batch and dtype."""

    batch: int
    dtype: Dtype
    input_bytes: int
    activation_bytes: int           # the fresh tensors of one forward pass
    peak_bytes: int                 # most bytes alive at once in inference, input included
    weight_bytes: int               # parameters and BN buffers
    receptive_field: tuple[ReceptiveField, ...]
    depth: int                      # weight layers on the main path
    shortcuts: ShortcutCounts

    @property
    def residual_units(self) -> int:
        return self.shortcuts.total

    @property
    def projections(self) -> int:
        return self.shortcuts.projection

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch, "dtype": self.dtype, "input_bytes": self.input_bytes,
            "activation_bytes": self.activation_bytes, "peak_bytes": self.peak_bytes,
            "weight_bytes": self.weight_bytes, "receptive_field": [r.to_dict() for r in self.receptive_field],
            "depth": self.depth, "residual_units": self.residual_units, "shortcuts": self.shortcuts.to_dict(),
            "projections": self.projections,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Costs":
        return cls(d["batch"], d["dtype"], d["input_bytes"], d["activation_bytes"], d["peak_bytes"],
                   d["weight_bytes"], tuple(ReceptiveField.from_dict(r) for r in d["receptive_field"]),
                   d["depth"], ShortcutCounts.from_dict(d["shortcuts"]))
