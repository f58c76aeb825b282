"""The layout tells the architecture: each package imports only the layers below it, and
no module imports one that imports it back (function-level imports count too)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Each package and what it may import. crmstream/ is the floor: settings, errors, metrics,
# topic names. The applications stand on it; bench/ and tools/ (not installed) use them.
ALLOWED = {
    "crmstream": set(),
    "schemas": {"crmstream"},
    "rules": {"crmstream", "schemas"},
    "handlers": {"crmstream", "rules", "schemas"},
    "storefront": {"crmstream", "schemas"},
    "devstack": {"crmstream"},
    "console": {"crmstream", "handlers", "rules", "schemas", "storefront"},
    "streams": {"crmstream", "handlers", "rules", "schemas", "storefront", "devstack", "console"},
    "bench": {"crmstream", "handlers", "rules", "schemas", "storefront", "devstack", "streams"},
    "tools": {"crmstream", "handlers", "storefront", "streams"},
}


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def imports() -> dict[str, set[str]]:
    """Module → the project modules it imports, anywhere in its body."""
    found: dict[str, set[str]] = {}
    modules = {module_of(path) for pkg in ALLOWED for path in (ROOT / pkg).rglob("*.py")}
    for pkg in ALLOWED:
        for path in (ROOT / pkg).rglob("*.py"):
            targets: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                targets |= {name for name in names if name in modules}
            found[module_of(path)] = targets
    return found


def test_each_package_imports_only_the_layers_below_it() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in imports().items()
        for target in targets
        if (top := target.split(".")[0]) != module.split(".")[0]
        and top not in ALLOWED[module.split(".")[0]]
    )
    assert wrong == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target == module or target.startswith(module + "."):
                continue  # a package importing its own modules
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert cycles == []


def test_the_floor_names_no_layer_above_it_in_its_strings() -> None:
    """A module path or folder in a string ("handlers.pipeline:…", "rules") is an import
    the check above cannot see: the wiring that needs one belongs to the layer above."""
    above = "|".join(package for package in ALLOWED if package != "crmstream")
    naming = re.compile(rf"^({above})$|\b({above})[.:/]\w")
    named = []
    for path in (ROOT / "crmstream").rglob("*.py"):
        tree = ast.parse(path.read_text())
        documented = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        named += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in documented
            and naming.search(node.value)
        ]
    assert named == []
