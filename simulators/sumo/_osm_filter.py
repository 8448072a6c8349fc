"""The drivable part of an OSM file, every tag kept, for netconvert.

The router reads the same roads (:func:`routing._osm.is_drivable` decides for both), so every
router edge has a SUMO counterpart. The router's own filtered copy drops the tags SUMO reads
(``turn:lanes``, ``lanes:forward``, ``traffic_signals:direction`` ...), so this one keeps them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import osmium

from routing._osm import is_drivable
from routing.errors import GraphBuildError


def _runs_of_present(refs: list[int], present: Mapping[int, object]) -> Iterable[list[int]]:
    # A clipped extract keeps ways whole but drops nodes outside its box: cut ways at the gaps,
    # as the router does, so both see the same road pieces.
    run: list[int] = []
    for ref in refs:
        if ref in present:
            run.append(ref)
            continue
        if len(run) >= 2:
            yield run
        run = []
    if len(run) >= 2:
        yield run


def write_drivable_osm(source: Path, target: Path) -> tuple[int, int]:
    """Copy the drivable ways of ``source`` (``.osm`` / ``.osm.pbf``) and their nodes to ``target``.

    Returns:
        ``(nodes_written, ways_written)``.

    Raises:
        GraphBuildError: the file is unreadable or holds no drivable road.
    """
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    wanted: set[int] = set()
    try:
        for way in osmium.FileProcessor(str(source), osmium.osm.WAY):
            if not isinstance(way, osmium.osm.Way):
                continue
            tags = {tag.k: tag.v for tag in way.tags}
            if is_drivable(tags):
                refs = [node.ref for node in way.nodes]
                ways.append((way.id, refs, tags))
                wanted.update(refs)
        nodes: dict[int, tuple[float, float, dict[str, str]]] = {}
        for node in osmium.FileProcessor(str(source), osmium.osm.NODE):
            if isinstance(node, osmium.osm.Node) and node.id in wanted and node.location.valid():
                nodes[node.id] = (
                    node.location.lon,
                    node.location.lat,
                    {tag.k: tag.v for tag in node.tags},
                )
    except RuntimeError as exc:  # pyosmium reports unreadable input as RuntimeError
        raise GraphBuildError(f"cannot read OSM file {source}: {exc}") from exc
    if not ways:
        raise GraphBuildError(f"{source} holds no drivable road")
    next_id = max(way_id for way_id, _, _ in ways) + 1
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(target)) as writer:
        for node_id in sorted(nodes):
            lon, lat, tags = nodes[node_id]
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), tags=tags))
        for way_id, refs, tags in ways:
            for n, piece in enumerate(_runs_of_present(refs, nodes)):
                piece_id = way_id if n == 0 else next_id
                if n > 0:
                    next_id += 1
                writer.add_way(osmium.osm.mutable.Way(id=piece_id, nodes=piece, tags=tags))
                written += 1
    if written == 0:
        raise GraphBuildError(f"{source}: no drivable way has two nodes inside the extract")
    return len(nodes), written
