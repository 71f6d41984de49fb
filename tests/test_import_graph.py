"""No import circles in tfmeta/: its module import graph, read with `ast`, is acyclic.

Nodes are tfmeta's modules (a package is its `__init__.py`). `import a.b` and
`from a.b import c` give an edge to `a.b`, or to `a.b.c` when `c` is a module; the
parent packages that Python initialises on the way are not edges (every submodule
import would otherwise close a circle through its package's `__init__`). Imports at
module level and imports inside functions (run later, on call) are two graphs: the
first must be acyclic, and so must both together, so that no lazy import hides a circle.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tfmeta"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The tfmeta module `name` is, or lives in (a name imported from a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: pathlib.Path) -> tuple[set[str], set[str]]:
    """`(module_level, in_functions)`: the tfmeta modules `module` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = ({}, {})

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                        ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in child.names]
            for name in names:
                target = resolve(name)
                if target is not None and target != module:
                    found[in_function].setdefault(target, child.lineno)
            visit(child, inside)

    visit(tree, False)
    return set(found[0]), set(found[1])


GRAPH = {module: imports(module, path) for module, path in MODULES.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A circle of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_the_package():
    assert {"tfmeta.learners.meta_learner", "tfmeta.export.export_learner"} <= set(GRAPH)
    assert "tfmeta.learners.meta_learner" in GRAPH["tfmeta.learners.maml"][0] | {
        target for module in GRAPH["tfmeta.learners.maml"][0] for target in GRAPH[module][0]}


@pytest.mark.parametrize("with_function_imports", [False, True])
def test_no_import_circle(with_function_imports):
    edges = {module: top | (inner if with_function_imports else set())
             for module, (top, inner) in GRAPH.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_export_imports_no_learner_type():
    """tfmeta/export/ uses the learners' interface only: no module defining a learner class."""
    learner_modules = {"tfmeta.learners", "tfmeta.learners.meta_learner",
                       "tfmeta.learners.gradient_learner", "tfmeta.learners.maml",
                       "tfmeta.learners.reptile", "tfmeta.learners.protonet",
                       "tfmeta.learners.baseline", "tfmeta"}
    for module, (top, inner) in GRAPH.items():
        if module.startswith("tfmeta.export"):
            assert not (top | inner) & learner_modules, module
