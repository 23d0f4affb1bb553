"""Loading a package's public names on first use (PEP 562), for the package inits of adapters/ and
projector/: a command that never projects does not import DuckDB and Arrow to start."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(
    package: str, where: dict[str, str], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` for `package`: `where` maps a name to the submodule
    (relative, e.g. ".runner") that defines it; a name that is itself a submodule maps to ""."""
    module = importlib.import_module(package)

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        submodule = where[name]
        if not submodule:
            return importlib.import_module(f".{name}", package)
        value = getattr(importlib.import_module(submodule, package), name)
        setattr(module, name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(module), *public})

    return getattr_, dir_
