"""The layout's rules: tests use what other packages make public, and product
modules stay small enough to read."""

from __future__ import annotations

import ast
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from tests.helpers import ROOT

MAX_MODULE_LINES = 400


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(source: str, package: str) -> list[str]:
    """The imports in `source` (a module of `package`) of an underscore name, or through
    an underscore module, from another package: `line: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                continue  # its own package
            module = node.module or ""
            if node.level == 0 and module.rpartition(".")[0] == package:
                continue  # a sibling module: its own package
            parts = module.split(".")
            found += [f"{node.lineno}: from {'.' * node.level}{module} import {alias.name}"
                      for alias in node.names
                      if _private(alias.name) or any(map(_private, parts))]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names
                      if any(map(_private, alias.name.split(".")))]
    return found


def product_modules() -> list[Path]:
    """The modules of the packages the distribution ships (pyproject's find include)."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = setup["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = [path for path in ROOT.iterdir()
            if path.is_dir() and any(fnmatch(path.name, pattern) for pattern in include)]
    return sorted(module for top in tops for module in top.rglob("*.py"))


def test_no_test_imports_an_underscore_name_from_another_package() -> None:
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parent.parts)
        found += [f"{path.relative_to(ROOT)}:{hit}"
                  for hit in private_imports(path.read_text(encoding="utf-8"), package)]
    assert not found, ("tests import private names; make the name public or test "
                       "through the public surface:\n" + "\n".join(found))


def test_the_import_check_tells_private_from_public() -> None:
    source = ("from actors.order.outcomes import _unchanged, settle\n"
              "from actors._internal import thing\n"
              "import actors._internal.more\n"
              "from tests.unit.order.helpers import _local\n"
              "from . import _sibling\n"
              "from daemon import __version__\n")
    assert private_imports(source, "tests.unit.order") == [
        "1: from actors.order.outcomes import _unchanged",
        "2: from actors._internal import thing",
        "3: import actors._internal.more",
    ]


def test_no_product_module_exceeds_the_line_limit() -> None:
    modules = product_modules()
    assert any(path.name == "actor.py" for path in modules)  # the packages were found
    long = [f"{path.relative_to(ROOT)}: {lines} lines" for path in modules
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"product modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)
