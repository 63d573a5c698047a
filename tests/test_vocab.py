"""One vocabulary: each name, word and small text rule of explorer/ is defined in one module
(explorer/vocab.py, explorer/labels.py, explorer/lessons.py, explorer/diagram/ids.py) and every
other module imports it; the source is read to find copies."""
import ast
import functools
from pathlib import Path

import pytest

import explorer
from explorer.labels import escape_markdown, file_stem, pair, side, square
from explorer.lessons import UNIT_VARIANTS
from explorer.trace import trace
from explorer.vocab import SHORTCUT_KINDS, SHORTCUT_TEXT, shortcut_counts

ROOT = Path(__file__).resolve().parents[1] / "explorer"


@functools.lru_cache(maxsize=1)
def _modules():
    return [(path.relative_to(ROOT.parent).as_posix(), ast.parse(path.read_text()))
            for path in sorted(ROOT.rglob("*.py"))]


def _strings(tree):
    """String constants of a module, docstrings left out."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def _where(found) -> set[str]:
    return {path for path, tree in _modules() if any(found(s) for s in _strings(tree))}


def test_each_shortcut_word_is_written_in_the_vocabulary_only():
    words = {w for t in SHORTCUT_TEXT.values() for w in (t.word, t.label, t.name, t.phrase)} - set(SHORTCUT_KINDS)
    for word in sorted(words):
        assert _where(lambda s, w=word: s == w) == {"explorer/vocab.py"}, word


def test_the_fig4_units_are_tabled_once():
    for v in UNIT_VARIANTS.values():
        assert _where(lambda s, label=v.label: s == label) == {"explorer/lessons.py"}, v.label


def test_text_rules_are_defined_once():
    assert _where(lambda s: "`*_" in s or "*_`" in s) == {"explorer/labels.py"}  # Markdown's specials
    assert _where(lambda s: s == "-_.") == {"explorer/labels.py"}                 # file-name characters
    assert not _where(lambda s: "groups (" in s)  # no label is parsed back for a conv's groups


@pytest.mark.parametrize("name", ["pair", "side", "square", "escape_markdown", "file_stem", "drawn_ids"])
def test_helpers_are_defined_once(name):
    defs = [path for path, tree in _modules() for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.name.lstrip("_") == name]
    assert len(defs) == 1, defs


def test_drawn_ids_are_made_in_the_diagram_package():
    # outside explorer/diagram/, no code names a drawn group by gluing a role onto a unit path
    outside = [path for path, tree in _modules() if not path.startswith("explorer/diagram/")
               for s in _strings(tree) if s in (".add", ".pre", ".post")]
    assert not outside, outside


def test_the_helpers_read_and_write_as_torch_and_torchvision_do():
    assert pair(3) == (3, 3) and pair((3, 1)) == (3, 1) and pair([2, 2]) == (2, 2)
    assert side((7, 7)) == 7 and side(2) == 2
    assert square((3, 3)) == 3 and square((3, 1)) == (3, 1) and square(1) == 1
    assert escape_markdown("a & b: *c*\n [d]") == "a \\& b\\: \\*c\\* \\[d\\]"
    assert file_stem("../my net?.json") == "my_net_.json" and file_stem("..") == "resnet"
    assert shortcut_counts({"identity": 5, "projection": 1, "zero_pad": 0}) == "1 projection, 5 identity"


def test_every_kind_has_its_words():
    assert set(SHORTCUT_TEXT) == set(SHORTCUT_KINDS)
    units = trace(explorer.preset("resnet20")).units + trace(explorer.preset("plain18")).units
    assert {u.shortcut for u in units} == {"identity", "zero_pad", "none"}
