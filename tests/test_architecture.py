"""The layout: data flows one way, config -> engine -> analyses -> outputs -> cli and web, with no import cycles."""

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "uqenergy"
LAYERS = ("config", "engine", "analyses", "outputs", ("cli", "web"))  # cli and web side by side, rightmost
HEAVY = ("matplotlib", "arviz", "SALib", "dask", "scipy.stats")
WEB = ("starlette", "uvicorn", "tomli_w")


def _layer(module: str) -> int:
    """config 0 ... cli and web 4; ``_version`` sits below every layer, the package and ``__main__`` above them."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    if name == "_version":
        return -1
    return next(
        (i for i, layer in enumerate(LAYERS) if name in (layer if isinstance(layer, tuple) else (layer,))), len(LAYERS)
    )


@functools.cache
def _imports() -> dict[str, list[tuple[str, bool]]]:
    """Each module of the package -> the uqenergy modules it imports (and whether inside a function)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("uqenergy", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        local = {
            id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)
        }
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uqenergy"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    names.append(
                        (
                            target
                            if (PACKAGE / Path(*target.split(".")[1:])).with_suffix(".py").exists()
                            else node.module,
                            id(node) in local,
                        )
                    )
        found[module] = names
    return found


def test_layers_import_only_to_their_left():
    wrong = [(m, t) for m, targets in _imports().items() for t, _ in targets if _layer(t) > _layer(m)]
    assert wrong == []


def test_no_import_cycles():
    graph = {m: {t for t, _ in ts if t in _imports()} for m, ts in _imports().items()}
    done, path = set(), []

    def visit(node):
        if node in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        path.append(node)
        for nxt in graph.get(node, ()):
            if nxt != node and not (nxt == "uqenergy" or node == "uqenergy"):
                visit(nxt)
        path.pop()
        done.add(node)

    for module in graph:
        visit(module)


def test_import_loads_no_heavy_library():
    code = "import sys, uqenergy; print(','.join(m for m in " + repr(HEAVY + WEB) + " if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_loads_no_web_framework():
    code = (
        "import sys; from uqenergy.cli import main\n"
        "for args in (['--help'], ['serve', '--help']):\n"
        "    try: main(args)\n"
        "    except SystemExit: pass\n"
        "print('loaded:', ','.join(m for m in " + repr(HEAVY + WEB) + " if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: uqenergy serve" in out.stdout  # both helps were printed
    assert out.stderr.strip() == "loaded:"


def test_validate_loads_no_scipy_and_no_data_library():
    """``uqenergy validate`` reads and checks files: it needs numpy, not scipy, xarray, pandas or plotting."""
    code = (
        "import sys; from uqenergy.cli import main\n"
        "for name in ('paper_traditional', 'paper_fleet', 'priors/honest.toml'):\n"
        "    try: main(['validate', '--quiet', name])\n"
        "    except SystemExit: pass\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('scipy', 'xarray', 'pandas', 'matplotlib')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parents[1]
    )
    assert out.stdout.strip() == ""


def test_a_run_loads_no_scipy_stats(tmp_path):
    """A plain run draws from numpy's samplers and the closed-form laws: scipy.stats is half a second of import."""
    from conftest import SMALL_STUDY

    study = tmp_path / "small.toml"
    study.write_text(SMALL_STUDY.replace("draws = 20000", "draws = 2000"))
    code = (
        "import sys; from uqenergy.cli import main\n"
        f"try: main(['run', {str(study)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "except SystemExit: pass\n"
        "print(','.join(m for m in ('scipy.stats', 'arviz', 'SALib', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "out" / "report.md").is_file(), out.stderr
    assert out.stdout.strip() == ""
