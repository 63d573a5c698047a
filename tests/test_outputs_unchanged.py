"""Every user-visible output is byte-identical to the snapshot recorded before the internals were
reorganised (see tests/outputs_snapshot.py): summaries, costs, the DOT text of every diagram level,
unit figures, exported PyTorch code, Compare tables and diffs, for every preset and a fixed sample
of variants."""
import json

import pytest

from outputs_snapshot import SNAPSHOT, collect


@pytest.fixture(scope="module")
def current():
    return collect()


def test_snapshot_covers_presets_variants_and_pairs():
    recorded = json.loads(SNAPSHOT.read_text())
    kinds = {key.split(":")[0] for key in recorded}
    assert kinds == {"preset", "variant", "pair"}
    assert sum(1 for k in recorded if k.startswith("preset:")) >= 30


def test_outputs_unchanged(current):
    recorded = json.loads(SNAPSHOT.read_text())
    assert sorted(current) == sorted(recorded)
    changed = [f"{key} {out}" for key in recorded for out in recorded[key]
               if current[key].get(out) != recorded[key][out]]
    changed += [f"{key} {out} (new)" for key in current for out in current[key] if out not in recorded[key]]
    assert not changed, "outputs changed:\n" + "\n".join(changed)
