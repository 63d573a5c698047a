"""Fingerprints of every user-visible output (summary, costs, diagrams, exported code, compare,
diff, limits estimate) for every preset and a fixed sample of variants.

The snapshot in tests/data/outputs.sha256.json was recorded before the internals were
reorganised; `tests/test_outputs_unchanged.py` asserts the outputs are byte-identical to it.
Regenerate only for an intended output change:  python tests/outputs_snapshot.py --write
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("data") / "outputs.sha256.json"
SKIP_HEAVY = {"resnet1202", "preact_resnet1001"}  # summary only: their layer drawings take seconds

_VARIANT_KEYS = {
    "block": ["basic", "bottleneck"],
    "skip_span": [None, 0, 1, 2, 3, 4],
    "bn_position": ["after_conv", "before_conv", "after_add", "none"],
    "relu_position": ["after_add", "before_add", "before_conv"],
    "shortcut": ["A", "B", "C"],
    "stride_on": ["3x3", "first"],
    "stem": ["imagenet", "cifar"],
    "zero_init_residual": [False, True],
}


def variant_dicts(n: int = 60, seed: int = 18) -> list[dict]:
    """A fixed pseudo-random sample of small configs (some invalid: those record their error)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stages = rng.randint(1, 4)
        d = {k: rng.choice(v) for k, v in _VARIANT_KEYS.items()}
        d.update(name=f"v{i}", depths=[rng.randint(1, 3) for _ in range(stages)],
                 widths=[rng.choice([4, 8, 12, 16]) for _ in range(stages)],
                 stem_width=rng.choice([4, 8, 16]), input_size=rng.choice([8, 16, 32, 33]),
                 num_classes=rng.choice([3, 10]), in_channels=rng.choice([1, 3]))
        if d["block"] == "bottleneck" and rng.random() < 0.4:
            d.update(groups=rng.choice([2, 4]), width_per_group=rng.choice([16, 32]))
        out.append(d)
    return out


def _h(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:20]


def _dump(doc) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def outputs(cfg, heavy: bool = True) -> dict[str, str]:
    """Fingerprint of each output of one config."""
    from explorer.cli.summary import print_summary
    from explorer.diagram import build_graph, build_unit_figure, equation, unit_names
    from explorer.export.pytorch import to_pytorch_code
    from explorer.facts.costs import measure_costs
    from explorer.facts.limits import check_limits
    from explorer.facts.summary import measure_summary

    out = {}
    s = measure_summary(cfg)
    out["summary.json"] = _h(_dump(s.to_dict()))
    buf = io.StringIO()
    print_summary(s, out=buf)
    out["summary.txt"] = _h(buf.getvalue())
    out["costs.json"] = _h(_dump(measure_costs(cfg, batch=2, dtype="bf16").to_dict()))
    est = check_limits(cfg)
    out["estimate"] = _h(f"{est.weight_layers} {est.params} {est.macs}")
    if not heavy:
        return out
    for detail in ("stages", "units", "layers"):
        out[f"dot.{detail}"] = _h(build_graph(cfg, detail=detail).source)
    out["dot.layers.fold.LR"] = _h(build_graph(cfg, detail="layers", fold=True, direction="LR").source)
    out["dot.units.params"] = _h(build_graph(cfg, detail="units", color_by="params").source)
    out["dot.layers.memory"] = _h(build_graph(cfg, detail="layers", color_by="memory", shapes=False).source)
    names = unit_names(cfg)
    for unit in {names[0], names[-1]} if names else {None}:
        out[f"unit.{unit}"] = _h(build_unit_figure(cfg, unit).source + "\n" + equation(cfg, unit))
    out["pytorch"] = _h(to_pytorch_code(cfg))
    return out


def pair_outputs(a, b) -> dict[str, str]:
    """Compare table (JSON, CSV, CLI text) and the structural diff of two configs."""
    from explorer.cli.compare import print_diff, print_table
    from explorer.compare import compare_table, differing_keys, to_csv_bytes, to_json_bytes
    from explorer.diff import diff_configs, highlights, total

    rows = compare_table([a, b], batch=2)
    buf = io.StringIO()
    print_table(rows, differing_keys([a, b]), out=buf)
    print_diff(a, b, out=buf)
    changes = diff_configs(a, b)
    return {
        "compare.json": _h(to_json_bytes(rows)),
        "compare.csv": _h(to_csv_bytes(rows)),
        "compare.txt": _h(buf.getvalue()),
        "diff": _h(_dump({"changes": [c.to_dict() for c in changes], "total": total(a, b),
                          "hl_a": highlights(changes, a, "a"), "hl_b": highlights(changes, b, "b")})),
    }


def collect() -> dict[str, dict[str, str]]:
    from explorer import ArchConfig, ConfigError, PRESETS

    doc: dict[str, dict[str, str]] = {}
    for name, cfg in PRESETS.items():
        doc[f"preset:{name}"] = outputs(cfg, heavy=name not in SKIP_HEAVY)
    valid = []
    for d in variant_dicts():
        try:
            cfg = ArchConfig.from_dict(d)
        except ConfigError as exc:
            doc[f"variant:{d['name']}"] = {"error": _h(str(exc))}
            continue
        valid.append(cfg)
        doc[f"variant:{d['name']}"] = outputs(cfg)
    pairs = [("resnet18", "resnet34"), ("resnet50", "resnext50_32x4d"), ("resnet20", "plain20"),
             ("resnet110", "resnet110_skip1"), ("resnet110", "preact_resnet110"),
             ("resnet50", "resnet50_paper"), ("preact_resnet164", "resnet164")]
    for a, b in pairs:
        doc[f"pair:{a}:{b}"] = pair_outputs(PRESETS[a], PRESETS[b])
    for a, b in zip(valid[0::2], valid[1::2]):
        doc[f"pair:{a.name}:{b.name}"] = pair_outputs(a, b)
    return doc


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    result = collect()
    if "--write" in sys.argv:
        SNAPSHOT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT} ({len(result)} entries)")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
