"""Import structure: no import cycles among brainkit's modules (the layer order itself is lint-imports' job)."""

from __future__ import annotations

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's strongly connected components of the module import graph (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                components.append(component)
    return components


def test_tarjan_on_a_known_graph() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("f", "a"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    graph.add_module("g")
    found = sorted(sorted(c) for c in strongly_connected(graph) if len(c) > 1)
    assert found == [["a", "b", "c"], ["d", "e"]]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("brainkit")
    cycles = {frozenset(c) for c in strongly_connected(graph) if len(c) > 1}
    found = sorted(sorted(c) for c in cycles)
    assert not found, "import cycles (strongly connected modules):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_only_the_trainer_steps_optimisers() -> None:
    """One training loop: no module of brainkit outside training/ calls ``.backward(`` or an optimiser's
    ``.step(`` (a scheduler's or a sampler's step is another thing: those lines name no optimiser)."""
    import re
    from pathlib import Path

    import brainkit

    root = Path(brainkit.__file__).parent
    pattern = re.compile(r"\.backward\(|(optim\w*|opt)\.step\(")
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if "training" not in path.relative_to(root).parts[:1]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "training steps outside brainkit/training/:\n" + "\n".join(found)
