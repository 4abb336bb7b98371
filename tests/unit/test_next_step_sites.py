"""Every 403 and 409 a service raises names the next step (issue 21): a static sweep of the source, so a
new refusal cannot ship without one (the suite's test client checks the answers it sees at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "listings", "certification", "trading", "delivery")
REFUSALS = {"Forbidden", "Conflict", "InvalidTransition"}


def test_every_forbidden_and_conflict_raised_names_its_next_step():
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in REFUSALS
                        and not any(k.arg in ("next_step", None) for k in node.keywords)):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}")
    assert not missing, "refusals without a next_step:\n" + "\n".join(missing)
