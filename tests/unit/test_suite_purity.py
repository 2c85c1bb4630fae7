"""No suite keeps module state: a module-level container that a function fills while the
scenario is built is what a check's oracle and cause must not read (under xdist only the
measuring worker would fill it). Their data comes through the scenario (`expect`, `explain`)
or the environment (`remember`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"
CHECKS = ROOT / "netconform" / "checks"  # the suites' pure parts
MUTATORS = {"update", "clear", "append", "extend", "add", "pop", "setdefault", "remove"}
MUTATORS |= {"discard", "insert", "popitem", "__setitem__"}


def module_names(tree: ast.Module) -> set[str]:
    """Names bound at module level."""
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def mutated_module_state(source: str) -> list[str]:
    """`NAME.update(...)` / `NAME[k] = v` / `global NAME` of a module-level NAME inside a
    function, as `line: NAME`."""
    tree = ast.parse(source)
    names = module_names(tree)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Global):
                found += [f"{node.lineno}: global {n}" for n in node.names]
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in MUTATORS:
                    target = node.func.value
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
                target = node.value
            if isinstance(target, ast.Name) and target.id in names:
                found.append(f"{target.lineno}: {target.id}")
    return found


@pytest.mark.parametrize(
    "path",
    sorted([*SUITES.rglob("*.py"), *CHECKS.glob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_suite_fills_module_state(path: Path) -> None:
    found = mutated_module_state(path.read_text())
    assert not found, f"{path}: module state filled at runtime: {found}"


def test_the_guard_sees_the_pattern_it_forbids() -> None:
    source = (
        "EXPECTED: dict[str, int] = {}\n"
        "CLIENTS = {}\n"
        "def build(env):\n"
        "    EXPECTED.clear()\n"
        "    CLIENTS[env] = 1\n"
        "    local = {}\n"
        "    local.update(a=1)\n"
    )
    assert mutated_module_state(source) == ["4: EXPECTED", "5: CLIENTS"]
