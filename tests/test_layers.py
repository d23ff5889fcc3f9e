"""The import rule of docs/architecture.md, read from the source: imports point down the layers,
never sideways between model packages, and no module imports itself through others (no cycle).

Every import counts, also one inside a function: a late import hides a dependency, it does not
remove it. The rule is checked on the AST only, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mio"

# Bottom to top. A package may import its own modules and any package of a LOWER layer; two
# packages of one layer never import each other (the model packages share only what lies below).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),  # frames, config, errors, files: no model, no torch
    ("audio",),  # mio/audio.py: resampling, checks, envelopes, mel filterbanks
    ("metrics", "train"),  # every metric once; checkpoints and the training loop
    ("thinker", "talker", "face", "body", "render"),  # the five modules of the paper
    ("runtime",),  # sessions, the pipeline, transports
    ("server",),  # the web app
    ("bench",),  # benchmarks (may start a server)
    ("cli",),  # the `mio` command: may use everything
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}



def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _exists(module: str) -> bool:
    p = ROOT.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported mio module, line) of every import in a file, resolved to the module it names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "mio"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mio":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}")]
            out += [(s, node.lineno) for s in subs] or [(target, node.lineno)]
    return out


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    top = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
           if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}
    assert top <= set(RANK), f"place these in LAYERS (and docs/architecture.md): {sorted(top - set(RANK))}"


def test_imports_point_down():
    wrong = []
    for module, imports in _graph().items():
        here = _package(module)
        for target, line in imports:
            there = _package(target)
            if there == here or not there:
                continue
            if not here:  # mio/__init__.py: the version and the log handler, nothing above core
                if there != "core":
                    wrong.append(f"{module}:{line} -> {target} (mio/__init__.py may import only core)")
                continue
            if here not in RANK or RANK[there] >= RANK[here]:
                way = "sideways" if RANK.get(here) == RANK[there] else "up"
                wrong.append(f"{module}:{line} -> {target} ({way}: {here} may not import {there})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in imps if t != m}) for m, imps in _graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)
