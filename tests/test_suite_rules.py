"""Rules the test suite keeps: the real-browser modules share the session's one app server, and
no test, docstring or comment depends on a file outside the repository."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def calls_to(path: Path, name: str) -> list[int]:
    """Line numbers in `path` where a function called `name` is called."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


# Modules that start an app server of their own, and why: the session's server (conftest.py)
# serves every other browser test.
OWN_SERVER = {
    "test_concurrency.py": "a latency spy loaded into the server process at its start",
}


def test_browser_modules_share_the_session_server():
    modules = sorted(TESTS.glob("test_browser*.py"))
    assert len(modules) >= 4
    starts = {p.name: calls_to(p, "streamlit_server") for p in TESTS.glob("*.py")}
    starting = {name for name, lines in starts.items() if lines}
    assert starting <= {"conftest.py", *OWN_SERVER}, starting
    assert len(starts["conftest.py"]) == 1
    for path in modules:  # each reaches the server through the session fixture
        uses = [f for f in ast.walk(ast.parse(path.read_text())) if isinstance(f, ast.FunctionDef)
                and "app_url" in [a.arg for a in f.args.args]]
        assert uses, path.name


# A reference to a document kept outside the repository: the design notes by file name, or a
# path into a folder beside the checkout.
OUTSIDE = re.compile(r"\b(DESIGN|STYLE)\.md\b|\bshared/(reference|DESIGN|STYLE)|\bpublished\.md\b")


def test_no_text_points_at_documents_outside_the_repository():
    files = [p for folder in ("explorer", "tests", "benchmarks", "scripts") for p in (ROOT / folder).rglob("*")
             if p.suffix in {".py", ".sh", ".md", ".txt"} and p != Path(__file__).resolve()]
    files += [ROOT / "README.md", ROOT / "app.py", ROOT / "Makefile"]
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in files if p.is_file()
             for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if OUTSIDE.search(line)]
    assert not found, "\n".join(found)
