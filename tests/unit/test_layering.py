"""The package's layering, read from its source: what may import what.

Only the command line (cli.py, cluster.py, hydra_setup/, commands/) knows Hydra and OmegaConf; below it
everything receives the typed config (config.py). Only servers/ knows which backend it has."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import benchrun

PKG = Path(benchrun.__file__).parent
PLUGINS = PKG.parent / "hydra_plugins"  # Hydra's namespace package: benchrun's plugins live there
CLI = {"cli.py", "cluster.py"}
CLI_PACKAGES = {"commands", "hydra_setup"}


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """A module's tree, parsed once for all the tests here (they only read it)."""
    return ast.parse(path.read_text(), str(path))


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        yield rel, _parsed(path)


def _imported(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_nothing_below_the_cli_imports_hydra_or_omegaconf():
    below = {str(rel): sorted(_imported(tree) & {"hydra", "omegaconf"}) for rel, tree in _modules()
             if str(rel) not in CLI and rel.parts[0] not in CLI_PACKAGES}
    assert len(below) > 40  # the walk saw the package
    assert {k: v for k, v in below.items() if v} == {}


def test_only_servers_asks_which_backend_it_has():
    asks = []
    for rel, tree in _modules():
        if rel.parts[0] == "servers":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In)) for op in node.ops):
                names = [n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", None)
                         for n in [node.left, *node.comparators]]
                if "backend" in names:
                    asks.append(f"{rel}:{node.lineno}")
    assert asks == []


def test_no_hydra_private_api():
    private = [str(rel) for rel, tree in _modules() for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hydra._internal")]
    assert private == []


def _all_modules():
    """(dotted name, is a package, tree) of every module of benchrun and of hydra_plugins/."""
    for root in (PKG, PLUGINS):
        for path in sorted(root.rglob("*.py")):
            parts = [root.name, *path.relative_to(root).with_suffix("").parts]
            pkg = parts[-1] == "__init__"
            yield ".".join(parts[:-1] if pkg else parts), pkg, _parsed(path)


def _graph() -> dict[str, set[str]]:
    """module -> the modules of benchrun and hydra_plugins/ it imports, anywhere in it (a
    function-level import is a dependency too: deferring it hides a cycle, it does not remove
    it)."""
    names = {mod: (tree, pkg) for mod, pkg, tree in _all_modules()}
    graph = {}
    for mod, (tree, pkg) in names.items():
        here = mod.split(".") if pkg else mod.split(".")[:-1]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).rstrip(".") \
                    if node.level else (node.module or "")
                deps |= {n for n in (base, *(f"{base}.{a.name}" for a in node.names)) if n in names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in names}
        graph[mod] = deps - {mod}
    return graph


def test_only_the_entry_point_imports_the_cli():
    """The launcher and cluster.py run jobs through runner.py: nothing leans on the CLI's state."""
    users = sorted(mod for mod, deps in _graph().items() if "benchrun.cli" in deps)
    assert users == ["benchrun.__main__"]


def test_no_import_cycles():
    import graphlib

    graph = _graph()
    assert "benchrun.measure.catalogue" in graph["benchrun.job"]  # the walk sees imports
    assert "benchrun.runner" in graph["hydra_plugins.benchrun_launcher.slurm_launcher"]  # and the plugins
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def _package_of(mod: str, packages: set[str]) -> str:
    """The deepest package a module lives in (a package's __init__ is its own package)."""
    parts = mod.split(".")
    while ".".join(parts) not in packages:
        parts = parts[:-1]
    return ".".join(parts)


def test_no_package_cycles():
    """Packages depend one way too (report reads what analysis decided, never the reverse):
    an edge between two packages, neither inside the other, for every import between their
    modules. A package and its parent (benchrun.report -> benchrun.config) are not a cycle."""
    import graphlib

    packages = {mod for mod, pkg, _ in _all_modules() if pkg}
    edges: dict[str, set[str]] = {}
    for mod, deps in _graph().items():
        a = _package_of(mod, packages)
        for dep in deps:
            b = _package_of(dep, packages)
            if not (a == b or a.startswith(b + ".") or b.startswith(a + ".")):
                edges.setdefault(a, set()).add(b)
    assert "benchrun.measure" in edges["benchrun.report"]  # the walk sees packages
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError naming the cycle
