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


def test_only_the_app_package_imports_streamlit():
    for path in (ROOT / "explorer").rglob("*.py"):
        if (ROOT / "explorer" / "app") not in path.parents:
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


def explorer_imports(path):
    """Modules of explorer/ that a file imports, at any depth (lazy imports in functions too)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports for type checkers only are never run
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "explorer"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "explorer":
            names.add(node.module)
            # `from explorer.diagram import graph` imports the submodule explorer.diagram.graph
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def module_files():
    out = {}
    for path in (ROOT / "explorer").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def test_no_import_cycle_in_the_library():
    files = module_files()
    graph = {mod: sorted(m for m in explorer_imports(path) if m in files and m != mod) for mod, path in files.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(mod, path):
        state[mod] = 1
        for dep in graph[mod]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    # a package's __init__ importing its own modules is not a cycle: check the finder finds real ones
    graph["explorer.arch.plan"] = graph["explorer.arch.plan"] + ["explorer.arch.config"]
    state.clear()
    try:
        visit("explorer.arch.config", ["explorer.arch.config"])
    except AssertionError as exc:
        assert "explorer.arch.config -> explorer.arch.plan -> explorer.arch.config" in str(exc)
    else:
        raise AssertionError("the cycle finder missed a planted cycle")


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "explorer").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
    assert len((ROOT / "app.py").read_text().splitlines()) <= 150


def test_flow_runs_one_way():
    """config -> builder -> trace -> (facts | diagram | timing | lab) -> (compare | runs) -> cli / app."""
    files = module_files()
    order = {"explorer.errors": 0, "explorer.labels": 0, "explorer.limits": 0, "explorer.vocab": 0, "explorer.arch": 1, "explorer.trace": 2,
             "explorer.records": 2, "explorer.export": 3, "explorer.diff": 5,
             "explorer.facts": 3, "explorer.diagram": 3, "explorer.timing": 3, "explorer.lab": 4,
             "explorer.lessons": 1, "explorer.compare": 5, "explorer.runs": 5, "explorer.cli": 6, "explorer.app": 6}

    def rank(mod):
        best = max((k for k in order if mod == k or mod.startswith(k + ".")), key=len, default=None)
        return order[best] if best else None

    for mod, path in files.items():
        if rank(mod) is None:
            continue
        for dep in explorer_imports(path):
            if dep in files and rank(dep) is not None and not dep.startswith(mod):
                assert rank(dep) <= rank(mod), f"{mod} imports {dep}, which is downstream of it"
