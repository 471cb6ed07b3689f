"""Cycles in a directed graph: the ledger's Depends-On lint and the architecture test's import circles."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def cyclic_components(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle (more than one node, or a node with an edge to
    itself), in the order Tarjan's algorithm closes them; iterative, so no recursion limit. Edges to nodes
    that are not keys of graph are ignored."""
    edges = {node: [s for s in successors if s in graph] for node, successors in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = edges[node]
            if child < len(successors):
                work.append((node, child + 1))
                nxt = successors[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components
