"""The walkable network of a community (roads, paths, gate links) as a graph, and walking distances."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
from shapely.geometry import shape
from shapely.ops import unary_union

M_PER_DEG_LAT = 111_320.0


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Straight-line distance in metres (equirectangular; fine within a community)."""
    k = M_PER_DEG_LAT * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lat2 - lat1) * M_PER_DEG_LAT, (lon2 - lon1) * k)


def path_graph(geometries: Iterable[Mapping[str, Any]]) -> nx.Graph:
    """The network of these GeoJSON line geometries as a graph: nodes are (lon, lat) vertices, edge
    weights in metres; lines that cross are split at the crossing, so a crossing is a node."""
    graph = nx.Graph()
    lines = [shape(geometry) for geometry in geometries]
    if not lines:
        return graph
    merged = unary_union(lines)
    for line in getattr(merged, "geoms", [merged]):
        for (x1, y1), (x2, y2) in itertools.pairwise(line.coords):
            a, b = (round(x1, 7), round(y1, 7)), (round(x2, 7), round(y2, 7))
            graph.add_edge(a, b, weight=metres(a[1], a[0], b[1], b[0]))
    return graph


def walking_path(graph: nx.Graph, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    """The points (lat, lon) of the shortest walk from start to end over the network: start, the
    network's vertices from the node nearest start to the node nearest end, end (a straight line
    when there is no network or no way through)."""
    if graph.number_of_nodes() == 0:
        return [start, end]
    a, b = (min(graph.nodes, key=lambda n: (n[0] - lon) ** 2 + (n[1] - lat) ** 2) for lat, lon in (start, end))
    try:
        nodes = nx.shortest_path(graph, a, b, weight="weight")
    except nx.NetworkXNoPath:
        return [start, end]
    return [start, *[(n[1], n[0]) for n in nodes], end]


@dataclass
class Walk:
    """A walking distance to a target."""

    metres: float
    straight_m: float


class Network:
    """Walking distances over a community's path network."""

    def __init__(self, graph: nx.Graph) -> None:
        self.graph = graph
        self._nodes = list(graph.nodes)

    def nearest(self, lat: float, lon: float) -> tuple[tuple[float, float] | None, float]:
        """The nearest network node and the straight distance to it."""
        if not self._nodes:
            return None, 0.0
        node = min(self._nodes, key=lambda n: (n[0] - lon) ** 2 + (n[1] - lat) ** 2)
        return node, metres(lat, lon, node[1], node[0])

    def walks_to(self, target: tuple[float, float], sources: dict[str, tuple[float, float]]) -> dict[str, Walk]:
        """Walking distance from each source (lat, lon) to the target (lat, lon) over the network."""
        t_node, t_off = self.nearest(*target)
        out: dict[str, Walk] = {}
        lengths: dict[tuple[float, float], float] = {}
        if t_node is not None:
            lengths = nx.single_source_dijkstra_path_length(self.graph, t_node, weight="weight")
        for key, (lat, lon) in sources.items():
            straight = metres(lat, lon, *target)
            node, off = self.nearest(lat, lon)
            if node is None or t_node is None or node not in lengths:
                out[key] = Walk(straight * 1.4, straight)  # no network: a detour factor on the straight line
            else:
                out[key] = Walk(off + lengths[node] + t_off, straight)
        return out

    def path(self, start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
        """The points (lat, lon) of the shortest walk from start to end (walking_path)."""
        return walking_path(self.graph, start, end)
