"""The one-way rule of docs/architecture.md, checked on the imports themselves (those inside functions included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# search/'s layers, lowest first: a module imports only from its own layer or the ones before it.
LAYERS = ["config", "core", "scoring", "record", "plan", "fit", "choose", "processes", "tune", "command", "api", "__main__"]


def modules() -> dict[str, Path]:
    found = {}
    for package in ("search", "data", "models"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of this project it imports anywhere in its file (`from a import b` counts `a.b` if a
    module)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if parts[0] == "search" and len(parts) > 1 else None


def test_no_module_imports_itself_back_through_others():
    assert circles(import_graph()) == []


def test_search_layers_import_only_downwards_and_data_and_models_import_nothing_of_search():
    graph = import_graph()
    upwards = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(module) is not None and layer(target) is not None and layer(target) > layer(module)
    ]
    assert upwards == []
    lower = [module for module in graph if module.startswith(("data", "models"))]
    into_search = [f"{m} -> {t}" for m in lower for t in graph[m] if t.startswith("search")]
    assert into_search == []


def test_every_search_module_sits_in_a_layer_the_architecture_doc_names():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    packages = {module.split(".")[1] for module in modules() if module.startswith("search.") and module.count(".") >= 2}
    assert packages <= set(LAYERS)
    assert all(f"`search/{package}/`" in doc for package in packages)
    loose = {m for m, path in modules().items() if m.count(".") == 1 and m.startswith("search.") and path.stem != "__init__"}
    assert loose == {"search.__main__", "search.api", "search.config"}  # the entry points, the schema; all else in a layer


def test_a_circle_is_found_where_there_is_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
