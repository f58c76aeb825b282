"""A reference that imports what it checks agrees with it by construction: no module of
tests/oracle/ may import the engine's packages, directly or through a relative import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ORACLE = Path(__file__).parents[1] / "oracle"
ENGINE = frozenset({"crmstream", "handlers", "rules", "schemas", "storefront", "streams"})


def imported(module: Path) -> set[str]:
    """The top-level packages ``module`` imports, whatever form the import takes."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside tests/oracle/, unless it climbs out of it.
            if node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
            elif node.level > 1:
                names.add("..")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            names |= {
                arg.value.partition(".")[0]
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            }
    return names


def test_the_oracle_is_where_it_was_looked_for() -> None:
    assert {path.name for path in ORACLE.glob("*.py")} >= {"profiles.py", "triggers.py"}


@pytest.mark.parametrize("module", sorted(ORACLE.glob("*.py")), ids=lambda path: path.name)
def test_no_oracle_module_imports_the_engine(module: Path) -> None:
    assert not imported(module) & (ENGINE | {".."}), (
        f"{module.name} imports {sorted(imported(module) & (ENGINE | {'..'}))}"
    )


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import rules.derived\n"
        "from handlers.profile import read\n"
        "from .. import schemas\n"
        "import importlib\n"
        "importlib.import_module('crmstream.settings')\n"
    )
    assert imported(sample) >= {"rules", "handlers", "..", "crmstream"}
