"""The rooms of docs/architecture.md: who may import whom, read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI_PACKAGES = ("geodata.cli", "analysis.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Return the absolute module names `path` imports (``from a import b`` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _is_cli(name: str) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in CLI_PACKAGES)


def test_the_reader_sees_each_form_of_import():
    # the checks below are only as good as this reader: a CLI module's own imports of the CLI
    # (``from analysis.cli import common``, ``from analysis.cli.common import ...``) must show
    found = _imports(ROOT / "analysis" / "cli" / "profile.py")
    assert {"analysis.cli.common", "analysis.inputs", "argparse"} <= found
    assert any(_is_cli(name) for name in found)
    assert not _is_cli("analysis.client")


@pytest.mark.parametrize("package", ["dashboard", "analysis", "geodata"])
def test_no_page_or_library_module_imports_a_command_line_module(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if _is_cli(n))
        for path in _modules(package)
        if not _is_cli(_module_name(path)) and path.name != "__main__.py"
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, "move what they need from the CLI into the library"


@pytest.mark.parametrize("package", ["analysis", "geodata"])
def test_libraries_never_import_streamlit_or_the_dashboard(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imports(path) if n.split(".")[0] in {"streamlit", "folium", "dashboard"}
        )
        for path in _modules(package)
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_thin_entry_points_run_the_cli_packages():
    for package in ("analysis", "geodata"):
        assert f"{package}.cli.main" in _imports(ROOT / package / "__main__.py")
