"""The layout's rules, checked from the code itself: one import name, dependencies one way."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from .support import ROOT, proc_env

PACKAGES = ("eventlog", "adapters", "projector")


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_the_cli_loads_each_module_once_under_its_evlog_name() -> None:
    code = (
        "import json, sys, evlog.cli;"
        " print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=proc_env(), check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(PACKAGES), f"top-level copies loaded: {loaded & set(PACKAGES)}"
    assert "bench" not in loaded


def test_no_module_imports_by_the_old_names_and_the_product_never_imports_bench() -> None:
    for folder in (*PACKAGES, "evlog", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                assert top not in PACKAGES, f"{path}: imports {name} (use evlog.{name})"
                if folder != "bench" and folder != "tests":
                    assert top != "bench", f"{path}: the product imports {name}"


def test_the_packages_do_not_import_the_cli() -> None:
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                assert not (
                    parts[0] == "evlog" and (len(parts) == 1 or parts[1] not in PACKAGES)
                ), f"{path}: imports {name}: the packages must not depend on the CLI"
