"""Readable code: no function in explorer/ longer than 60 lines (its docstring aside) or taking
more than 8 parameters, unless a comment on the line before its `def` says why
("# long: ..." / "# many parameters: ..."); no module imports another module's private names."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"
MAX_LINES = 60
MAX_PARAMS = 8


def _functions():
    for path in sorted(ROOT.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                yield path.relative_to(ROOT.parent), node, lines[first - 2] if first >= 2 else ""


def _body_lines(node) -> int:
    """Lines from `def` to the end, less the docstring's."""
    n = node.end_lineno - node.lineno + 1
    doc = node.body[0] if node.body else None
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
        n -= doc.end_lineno - doc.lineno + 1
    return n


def _params(node) -> int:
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    n = len(names) + bool(a.vararg) + bool(a.kwarg)
    return n - (1 if names and names[0] in ("self", "cls") else 0)


def test_no_long_function_without_a_reason():
    long = [f"{path}:{node.lineno} {node.name} ({_body_lines(node)} lines)"
            for path, node, before in _functions()
            if _body_lines(node) > MAX_LINES and "# long:" not in before]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_function_with_many_parameters_without_a_reason():
    wide = [f"{path}:{node.lineno} {node.name} ({_params(node)} parameters)"
            for path, node, before in _functions()
            if _params(node) > MAX_PARAMS and "# many parameters:" not in before]
    assert not wide, "functions with more than 8 parameters:\n" + "\n".join(wide)


def test_no_module_imports_private_names_of_another():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("explorer"):
                found += [f"{path.relative_to(ROOT.parent)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_the_checks_see_what_they_check():
    # A planted long, wide function is caught by the same helpers (the checks cannot pass vacuously).
    planted = ast.parse("def f(a, b, c, d, e, f, g, h, i):\n" + "    x = 1\n" * 70).body[0]
    assert _body_lines(planted) == 71 and _params(planted) == 9
    assert sum(1 for _ in _functions()) > 300
