"""The package's shape, kept: no two crs modules import each other (directly or round a loop, counting
imports inside functions and under TYPE_CHECKING), no module imports another's private names, and the
spine does not reach up into the folders that build on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crs"
# The spine's lower half: everything else builds on these, so they import no folder of crs but llm's protocol.
FOUNDATION = {"crs.config", "crs.catalog", "crs.state", "crs.tools"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, list[tuple[str, str, int]]]:
    """module -> [(imported crs module, name taken from it or "", line)]."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, list[tuple[str, str, int]]] = {}
    for name, path in modules.items():
        found = out.setdefault(name, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crs"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub in modules:  # ``from crs.app import feedback``: the module itself
                        found.append((sub, "", node.lineno))
                    else:
                        found.append((node.module, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                found += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("crs.")]
    return out


def test_no_module_imports_a_private_name_of_another() -> None:
    bad = [
        f"{mod}:{line} imports {name} from {target}"
        for mod, found in imports().items()
        for target, name, line in found
        if name.startswith("_") and target != mod
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = {mod: {t for t, _, _ in found if t != mod and t != "crs"} for mod, found in imports().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other: {cycles}"


@pytest.mark.parametrize("module", sorted(FOUNDATION))
def test_the_foundation_imports_no_folder_above_it(module: str) -> None:
    found = imports()[module]
    allowed = FOUNDATION | {"crs", "crs.llm.base"}
    bad = [f"{module}:{line} imports {target}" for target, _, line in found if target not in allowed]
    assert not bad, "\n".join(bad)


def test_the_public_names_load_lazily() -> None:
    """``import crs`` hands out the names a program needs without loading a model library."""
    import subprocess
    import sys

    code = (
        "import sys, crs\n"
        "names = [crs.Session, crs.load_config, crs.FinalEvent, crs.BeliefState]\n"
        "heavy = [m for m in ('torch', 'chromadb', 'transformers', 'gradio') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert crs.Agent.__module__ == 'crs.agent' and set(crs.__all__) >= {'Agent', 'Session', 'load_config'}\n"
        "try:\n    crs.nope\nexcept AttributeError as e:\n    assert 'nope' in str(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
