"""The one-way flow: explorer/ never imports streamlit; app.py does no torch work itself."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_streamlit():
    for path in (ROOT / "explorer").rglob("*.py"):
        assert "streamlit" not in imported_modules(path), path


def test_app_is_thin():
    mods = imported_modules(ROOT / "app.py")
    assert "explorer" in mods and "streamlit" in mods
    assert not mods & {"torch", "graphviz", "torchinfo"}


def test_requirements_pin_torch_exactly():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines
    assert not any(line.startswith("torchvision") for line in lines)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make run" in (ROOT / "README.md").read_text()
