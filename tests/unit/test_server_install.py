"""`make run` installs only what the server needs: every module the server (and `make demo`) imports comes
from a distribution that `pip install -e .` brings, and the run target never installs the test tools."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVER_CODE = ["app.py", "exchange", "listings", "certification", "trading", "delivery", "console", "migrations",
               "deploy/gunicorn.conf.py", "scripts/journey.py"]
FIRST_PARTY = {"app", "exchange", "listings", "certification", "trading", "delivery", "console", "migrations"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, transitively (markers evaluated for this machine)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        todo += [r for r in (dist.requires or []) if "extra ==" not in r] + [
            r.split(";")[0] for r in (dist.requires or []) for extra in req.extras if f'extra == "{extra}"' in r]
    return seen


def test_every_module_the_server_imports_comes_with_the_server_install():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _closure(project["dependencies"])
    owners = md.packages_distributions()
    files = [p for entry in SERVER_CODE for p in ((ROOT / entry).rglob("*.py") if (ROOT / entry).is_dir()
                                                  else [ROOT / entry])]
    assert len(files) > 100
    missing = {}
    for path in files:
        for name in _imports(path) - FIRST_PARTY - set(sys.stdlib_module_names):
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(name, [])}
            if not dists & installed:
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported by the server but installed only with the test tools (or not at all): {missing}"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_the_server_alone_and_make_test_adds_the_test_tools():
    def commands(target: str) -> str:
        # -n: print, do not run; -B: as on a fresh machine (every stamp out of date).
        done = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run = commands("run")
    assert re.search(r"pip install .*-e \.$", run, re.M), run
    assert "[test]" not in run and "[dev]" not in run
    assert "gunicorn -c deploy/gunicorn.conf.py" in run
    assert "pip install --quiet --disable-pip-version-check -e '.[test]'" in commands("test-sqlite")
