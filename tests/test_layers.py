"""The shape of the code: capture stays light, and every package imports only from the layers below it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "waza"
# Lowest first; a package may import its own modules and those of lower layers only
# (docs/design.md draws the same map).
LAYERS = [
    {"schema"},
    {"waza", "errors", "model", "terminal"},
    {"otel"},
    {"store"},
    {"capture", "engine", "sample"},
    {"tasks", "interchange"},
    {"analysis"},
    {"compare", "dashboard"},
    {"serve", "telemetry"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
HEAVY = (
    "duckdb",
    "pyspark",
    "sqlglot",
    "starlette",
    "uvicorn",
    "bokeh",
    "msgspec",
    "jsonschema",
    "datasketch",
)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "waza"


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported waza module, line) for every import in the package, lazy ones too."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("waza", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                (module, name, node.lineno) for name in names if name == "waza" or name.startswith("waza.")
            ]
    return found


def test_every_package_has_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert modules | packages | {"waza"} == RANK.keys()


def test_imports_only_look_down() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, target, line in imports()
        if _package(module) != _package(target) and RANK[_package(target)] >= RANK[_package(module)]
    ]
    assert upward == []


def test_capturing_loads_no_engine_server_or_analysis() -> None:
    """Importing the public API and recording a session, in a fresh interpreter, as a skill would."""
    script = """
import json, sys, tempfile
from waza.telemetry import RuntimeCollector
with RuntimeCollector(tempfile.mkdtemp()) as collector:
    with collector.session("Deploy app-1", {"user_id": "u1"}, skill_name="azure-deploy") as s:
        with s.tool("az", args=["webapp", "create"]):
            pass
print(json.dumps(sorted(sys.modules)))
"""
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    upper = [
        m
        for m in loaded
        if m.startswith(("waza.engine", "waza.analysis", "waza.serve", "waza.tasks", "waza.dashboard"))
    ]
    assert heavy == [] and upper == []


def test_the_public_api_is_one_module_and_the_rest_says_it_is_internal() -> None:
    import importlib

    import waza.telemetry

    assert all(getattr(waza.telemetry, name) is not None for name in waza.telemetry.__all__)
    for package in (p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        if package in ("telemetry", "cli"):
            continue
        module = importlib.import_module(f"waza.{package}")
        assert "Internal" in (module.__doc__ or "") and hasattr(module, "__all__"), package
