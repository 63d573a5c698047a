"""How a trace sees module calls: each module's forward wrapped, and repeated units replayed.

While a trace runs, every module of its model calls through a wrapper set as an instance
attribute (removed afterwards; nothing shared with other models or threads, and cheaper than a
pair of forward hooks per module): the wrapper keeps the stack of module paths being executed
and records a leaf module's call as one node.

Deep nets repeat one unit many times (ResNet-1202 runs 199 identical units per stage). Two units
with the same modules, settings and input shape make the same ops with the same shapes, MACs
and bytes; only their module paths differ. The trace records the first such unit as it runs and,
for each later one, appends its records under the new path, counts its bytes and MACs and the
memory it holds at its peak, and hands on a fresh meta tensor of the unit's output shape,
instead of running it. A unit is replayed only where the first run showed that this is exact:
nothing pending before or after it, no input but its own, and nothing alive after it but its
output. Units carrying hooks of their own, or whose parts do, always run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from explorer.arch.meta import paused_gc
from explorer.trace_watch import blank

# nn.Module's own bookkeeping (hook tables, parameter and child tables, the mode) and the call
# wrapper: everything else in a module's __dict__ is a setting of its own.
_INTERNAL = frozenset(vars(nn.Module())) | {"forward"}
# The trace's own bookkeeping (reading shapes, making a replayed unit's output) is no op of the
# network: torch-function modes, the recorder's included, do not see it.
_OWN_WORK = torch._C.DisableTorchFunction


class ModuleCalls:
    """While entered, each module of `mods` (a model's named_modules) calls through a wrapper:
    `kind_of(mod)` names the node kind of a leaf module (recorded whole; its output made by
    `rec.quick(mod)` where that gives a maker) and is None for the others; modules of `unit_type`
    go through `rec.repeats`. `rec` has `scope`, `depth`, `record`, `quick` and `repeats`."""

    def __init__(self, rec: Any, mods: list[tuple[str, nn.Module]], kind_of: Callable[[nn.Module], Any],
                 unit_type: type) -> None:
        self.rec, self.kind_of, self.unit_type, self.mods = rec, kind_of, unit_type, mods
        self.saved: list[tuple[nn.Module, Any]] = []

    def __enter__(self) -> None:
        with paused_gc():  # thousands of wrappers, no garbage: the collector's passes find nothing
            for path, mod in self.mods:
                self.saved.append((mod, mod.__dict__.get("forward")))
                mod.__dict__["forward"] = self.wrap(mod, path)

    def __exit__(self, *exc) -> None:
        for mod, before in self.saved:
            if before is None:
                mod.__dict__.pop("forward", None)
            else:
                mod.__dict__["forward"] = before

    def wrap(self, mod: nn.Module, path: str) -> Callable:
        """`mod.forward` wrapped to keep the scope and record a leaf module's call as one node."""
        rec, forward, scope, kind = self.rec, mod.forward, self.rec.scope, self.kind_of(mod)
        if kind is None:
            def call(*args, **kwargs):
                scope.append(path)
                try:
                    return forward(*args, **kwargs)
                finally:
                    scope.pop()
            if isinstance(mod, self.unit_type):  # identical units are replayed, not run
                return lambda x, *rest, **kwargs: rec.repeats.call(mod, path, call, x, rest, kwargs)
            return call

        quick = rec.quick(mod)

        def call_leaf(*args, **kwargs):
            scope.append(path)
            rec.depth += 1
            try:
                out = None
                if quick is not None and len(args) == 1 and not kwargs:
                    with _OWN_WORK():
                        out = quick(args[0])
                if out is None:
                    out = forward(*args, **kwargs)
            finally:
                scope.pop()
                rec.depth -= 1
            if rec.depth == 0:
                with _OWN_WORK():
                    rec.record(path, kind, path, mod, out, args[:1])
            return out
        return call_leaf


@dataclass
class ModuleCounts:
    """One pass over a model's modules: what the trace reads off them besides its forward."""

    mods: list[tuple[str, nn.Module]]   # named_modules(), in order
    params: dict[str, int]              # parameters of each module, each once, by path ("" = the model)
    trainable: int                      # parameters that require grad
    buffers: int                        # elements of floating-point buffers


def module_counts(model: nn.Module, count: Callable[..., int]) -> ModuleCounts:
    """The counts of `model` from its leaves up: each module's own parameters added to its
    ancestors'. Where modules, parameters or buffers are shared, `count(module)` of each
    (`count(model, True)`: the trainable ones) and `model.buffers()` instead, which count each
    once."""
    mods = list(model.named_modules())
    params = [p for _, m in mods for p in m._parameters.values() if p is not None]  # noqa: SLF001
    bufs = [b for _, m in mods for b in m._buffers.values() if b is not None]  # noqa: SLF001
    children = sum(1 for _, m in mods for c in m._modules.values() if c is not None)  # noqa: SLF001
    if children != len(mods) - 1 or len({id(t) for t in (*params, *bufs)}) != len(params) + len(bufs):
        return ModuleCounts(mods, {name: count(m) for name, m in mods}, count(model, True),
                            sum(b.numel() for b in model.buffers() if b.is_floating_point()))
    counts = {name: sum(p.numel() for p in m._parameters.values() if p is not None) for name, m in mods}  # noqa: SLF001
    for name, _ in reversed(mods):  # a module comes before its children in named_modules
        if name:
            counts[name.rpartition(".")[0]] += counts[name]
    return ModuleCounts(mods, counts, sum(p.numel() for p in params if p.requires_grad),
                        sum(b.numel() for b in bufs if b.is_floating_point()))


def unit_signature(unit: nn.Module) -> tuple | None:
    """Everything that decides what `unit` does to its input: its modules' classes, own
    attributes (settings such as kernel, stride, eps, in-place), parameter and buffer shapes, in
    order. None when a hook sits on any of them. (An attribute that cannot be hashed makes the
    unit one that always runs.)"""
    parts: list = []
    stack = [("", unit)]
    while stack:  # depth first, children in order: named_modules' order without its bookkeeping
        name, m = stack.pop()
        children = reversed(m._modules.items())  # noqa: SLF001
        stack.extend((f"{name}.{k}" if name else k, c) for k, c in children if c is not None)
        if m._forward_hooks or m._forward_pre_hooks:  # noqa: SLF001 (torch's own hook tables)
            return None
        parts.append((name, type(m)))
        parts.extend((k, tuple(v) if type(v) is list else v) for k, v in m.__dict__.items() if k not in _INTERNAL)
        parts.extend((k, None if v is None else (tuple(v.shape), v.dtype))
                     for table in (m._parameters, m._buffers) for k, v in table.items())  # noqa: SLF001
    return tuple(parts)


@dataclass
class UnitTemplate:
    """What one run of a unit added to the trace, relative to the unit's path."""

    prefix: str                      # the unit's module path + "."
    records: list[dict[str, Any]]    # raw records, in order
    in_producer: str                 # the node that made the unit's input
    out_producer: str                # the record that made its output
    out_shape: tuple[int, ...]
    total: int                       # fresh bytes
    fresh_ops: int
    peak_rise: int                   # peak live bytes inside the unit, above the live at entry


class Repeats:
    """Replays of identical units for one trace. `rec` is the recorder: it has `raw`, `taken`,
    `depth` and `watch` (with `total`, `live`, `peak`, `fresh_ops`, `pending_bytes`,
    `pending_flops`, `muted` and `track`)."""

    def __init__(self, rec: Any, producer: str, unique: Callable[[str, set], str]) -> None:
        self.rec, self.producer, self.unique = rec, producer, unique
        self.templates: dict[tuple, UnitTemplate | None] = {}

    def call(self, unit: nn.Module, path: str, forward: Callable, x: Any, rest: tuple, kwargs: dict):
        """Run or replay `unit` (at `path`) on `x`."""
        rec, watch = self.rec, self.rec.watch
        with _OWN_WORK():
            key = self._key(unit, x, rest, kwargs)
        if key is None:
            return forward(x, *rest, **kwargs)
        if key in self.templates:
            template = self.templates[key]
            if template is None:
                return forward(x)
            with _OWN_WORK():
                return self._replay(template, path, x)
        self.templates[key] = None  # a unit inside it with the same key runs (never the case)
        start, live, peak_before, total, fresh = len(rec.raw), watch.live, watch.peak, watch.total, watch.fresh_ops
        watch.peak = live
        out = forward(x)
        rise = watch.peak - live
        watch.peak = max(peak_before, watch.peak)
        with _OWN_WORK():
            self.templates[key] = self._template(path, x, out, rec.raw[start:], live, total, fresh, rise)
        return out

    def _key(self, unit: nn.Module, x: Any, rest: tuple, kwargs: dict) -> tuple | None:
        """What makes two calls of units the same (None: this one always runs)."""
        watch = self.rec.watch
        if rest or kwargs or not isinstance(x, torch.Tensor) or self.rec.depth or not hasattr(x, self.producer) \
                or watch.pending_bytes or watch.pending_flops:
            return None
        sig = unit_signature(unit)
        key = (sig, tuple(x.shape), x.dtype)
        try:
            hash(key)
        except TypeError:  # an attribute that holds something unhashable: no comparison
            return None
        return None if sig is None else key

    def _template(self, path: str, x: torch.Tensor, out: Any, records: list, live: int, total: int,
                  fresh: int, rise: int) -> UnitTemplate | None:
        watch, prefix = self.rec.watch, path + "."
        if not isinstance(out, torch.Tensor) or not records or watch.pending_bytes or watch.pending_flops:
            return None
        ids = {r["id"] for r in records}
        source = getattr(x, self.producer)
        if getattr(out, self.producer, None) not in ids or watch.live - live != _nbytes(out) or any(
                not (r["id"].startswith(prefix) and (r["scope"] + ".").startswith(prefix)) for r in records) or any(
                i not in ids and i != source for r in records for i in r["inputs"]):
            return None
        return UnitTemplate(prefix, [dict(r) for r in records], source, getattr(out, self.producer),
                            tuple(out.shape), watch.total - total, watch.fresh_ops - fresh, rise)

    def _replay(self, t: UnitTemplate, path: str, x: torch.Tensor) -> torch.Tensor:
        rec, watch, prefix = self.rec, self.rec.watch, path + "."
        names = {t.in_producer: getattr(x, self.producer)}
        cut = len(t.prefix)
        for r in t.records:
            new = dict(r)
            new["id"] = names[r["id"]] = self.unique(prefix + r["id"][cut:], rec.taken)
            new["scope"] = path + r["scope"][len(t.prefix) - 1:]
            new["inputs"] = tuple(names[i] for i in r["inputs"])
            rec.raw.append(new)
        watch.peak = max(watch.peak, watch.live + t.peak_rise)
        watch.total += t.total
        watch.fresh_ops += t.fresh_ops
        out = blank(x, t.out_shape)
        watch.track(out)
        setattr(out, self.producer, names[t.out_producer])
        return out


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
