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
    """The points (lat, lon) of the shortest walk from start to end over the network (Network.route)."""
    return Network(graph).route(start, end).points


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

    def route(self, start: tuple[float, float], target: tuple[float, float]) -> Route:
        """The walk from start (lat, lon) to target (lat, lon) over the network: the path's points
        as (lat, lon), from the start, through the nearest network nodes, to the target (a straight
        line when there is no network or no way through it)."""
        s_node, s_off = self.nearest(*start)
        t_node, t_off = self.nearest(*target)
        straight = metres(*start, *target)
        if s_node is None or t_node is None:
            return Route([start, target], straight, straight)
        try:
            length, nodes = nx.single_source_dijkstra(self.graph, s_node, t_node, weight="weight")
        except nx.NetworkXNoPath:
            return Route([start, target], straight, straight)
        points = [start, *((lat, lon) for lon, lat in nodes), target]
        return Route(points, s_off + float(length) + t_off, straight)


@dataclass
class Route:
    """A walking route: its points (lat, lon) and its length over the network."""

    points: list[tuple[float, float]]
    metres: float
    straight_m: float

    def geojson(self) -> dict[str, Any]:
        """The route as a GeoJSON LineString (lon, lat)."""
        return {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in self.points]}
