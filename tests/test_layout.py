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
        "import json, sys, evlog.cli, evlog.adapters.registry, evlog.projector.runner,"
        " evlog.live.watch, evlog.live.exposure, evlog.ui.app;"
        " print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=proc_env(), check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(PACKAGES), f"top-level copies loaded: {loaded & set(PACKAGES)}"
    assert "bench" not in loaded


def test_commands_that_do_not_project_start_without_duckdb(tmp_path: Path) -> None:
    """DuckDB and Arrow take a third of a second to import: `evlog ingest` and `evlog status`
    never load them (evlog/commands/ import per command), and `evlog project` loads no adapter."""
    src = tmp_path / "a.jsonl"
    src.write_text('{"id": 1}\n')
    db = tmp_path / "e.db"
    code = (
        "import json, sys\n"
        "from evlog.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('duckdb', 'pyarrow', 'evlog.adapters.registry', 'evlog.live.server')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    )

    def loaded(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, env=proc_env()
        )
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stderr.strip().splitlines()[-1]))

    assert loaded("--db", str(db), "ingest", str(src)) == ["evlog.adapters.registry"]
    assert loaded("--db", str(db), "status") == []
    projecting = loaded("--db", str(db), "project")
    assert "duckdb" in projecting and "evlog.adapters.registry" not in projecting


def test_no_module_imports_by_the_old_names_and_the_product_never_imports_bench() -> None:
    for folder in (*PACKAGES, "evlog", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                assert top not in PACKAGES, f"{path}: imports {name} (use evlog.{name})"
                if folder != "bench" and folder != "tests":
                    assert top != "bench", f"{path}: the product imports {name}"


def test_the_packages_do_not_import_the_cli() -> None:
    """The packages import each other, and what they ask of the operating system
    (evlog/system/), never the application or the CLI; evlog/system/ imports nothing of
    evlog's."""
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                assert not (
                    parts[0] == "evlog"
                    and (len(parts) == 1 or parts[1] not in (*PACKAGES, "system"))
                ), f"{path}: imports {name}: the packages must not depend on the CLI"
    for path in (ROOT / "evlog" / "system").rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] != "evlog", f"{path}: imports {name}: system is a leaf"


def _public_api() -> list[tuple[str, object]]:
    """What a user imports: each package's __all__, and the public methods of its classes."""
    import inspect

    import evlog.adapters
    import evlog.eventlog
    import evlog.projector

    found: list[tuple[str, object]] = []
    for module in (evlog.eventlog, evlog.adapters, evlog.projector):
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            found.append((f"{module.__name__}.{name}", obj))
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    wrapped = isinstance(member, classmethod | staticmethod | property)
                    if attr.startswith("_") or not (callable(member) or wrapped):
                        continue
                    found.append((f"{module.__name__}.{name}.{attr}", member))
    return found


def test_the_public_api_is_documented() -> None:
    missing = []
    for name, obj in _public_api():
        target = obj.__func__ if isinstance(obj, classmethod | staticmethod) else obj
        target = target.fget if isinstance(target, property) else target
        if not (getattr(target, "__doc__", None) or "").strip():
            missing.append(name)
    assert not missing, f"{len(missing)} public definitions without a docstring: {missing}"


def _module_graph() -> dict[str, set[str]]:
    """The project's modules (by installed name) and the project modules each one imports."""
    folders = (
        ("eventlog", "evlog.eventlog"),
        ("adapters", "evlog.adapters"),
        ("projector", "evlog.projector"),
        ("evlog", "evlog"),
        ("bench", "bench"),
    )
    files: dict[str, tuple[Path, bool]] = {}
    for folder, package in folders:
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder)
            if folder == "evlog" and rel.parts[0] in PACKAGES:
                continue  # the links: those modules are listed under their own folder
            parts = [p for p in rel.with_suffix("").parts if p != "__init__"]
            files[".".join([package, *parts])] = (path, path.name == "__init__.py")
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in files.items():
        here = name if is_package else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                if node.module:  # `from . import x` needs x, not what the package imports
                    found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    graph = _module_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(module) :])}")
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    assert len(graph) > 50
    for module in sorted(graph):
        visit(module, [])


def test_the_application_layer_does_not_import_the_cli() -> None:
    """evlog/workspace.py and the operations under it are the Python API: no typer, no command,
    no CLI rendering (relative imports included)."""
    for name in ("workspace.py", "ingesting.py", "analytics.py", "errors.py"):
        tree = ast.parse((ROOT / "evlog" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
            elif isinstance(node, ast.Import):
                module = ",".join(a.name for a in node.names)
            else:
                continue
            for banned in ("typer", "cli", "commands", "output", "rendering"):
                assert banned not in module.split("."), f"evlog/{name} imports {module}"


def test_a_query_starts_with_its_own_command_only(tmp_path: Path) -> None:
    """`evlog query` into a pipe imports its own command and what it reads with: not the other
    commands, rich, asyncio or the SQLite backend (bench/startup: within 1.5x of importing
    DuckDB and running the query)."""
    from evlog.projector.query import SAFE_CONFIG

    duck = tmp_path / "e.duckdb"
    import duckdb

    duckdb.connect(str(duck), config=SAFE_CONFIG).close()
    code = (
        "import json, sys\n"
        "from evlog.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('rich', 'asyncio', 'evlog.eventlog.sqlite.log', 'evlog.commands.ingest',"
        " 'evlog.commands.watch', 'evlog.adapters', 'evlog.projector.runner')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    )
    argv = [sys.executable, "-c", code, "--duckdb", str(duck), "query", "SELECT 42 AS x"]
    out = subprocess.run(argv, capture_output=True, text=True, env=proc_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["x", "42"]
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []


def test_every_command_is_found_by_the_module_that_registers_it() -> None:
    """A run imports only its command's module (evlog/commands/__init__.py); each command's
    name leads to the module that registers it, and the root options that take a value are
    the ones the run reads past to find the command's name."""
    import typer

    from evlog import cli, commands

    app = commands.load()
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        module = commands.ALSO.get(name, name)
        assert command.callback.__module__ == f"evlog.commands.{module}", name
    for group in app.registered_groups:
        assert group.name is not None
        assert commands.ALSO.get(group.name, group.name) in commands.MODULES, group.name
    root = typer.main.get_command(app)
    taking_values = {opt for p in root.params if not getattr(p, "is_flag", False) for opt in p.opts}
    assert taking_values == cli.ROOT_VALUE_OPTIONS
    assert cli.command_named(["--db", "x.db", "--debug", "query", "SELECT 1"]) == "query"
    assert cli.command_named(["--durability", "full", "--", "status"]) == "status"
    assert cli.command_named(["--help"]) is None
