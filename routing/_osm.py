"""OSM input: files (.osm XML or .osm.pbf) and place downloads turned into raw osmnx graphs.

The only module that touches OSM files or the network. Everything it returns is an unsimplified
``nx.MultiDiGraph`` as osmnx builds it; ``graph.py`` does the rest.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import osmium
import osmnx as ox

from .errors import GraphBuildError, GraphDownloadError
from .graph import RESTRICTION_KINDS, OsmTurnRestriction

# osmnx's own "drive" filter, restated for ways read from a file: ox.graph_from_xml loads every
# highway way as-is, so a full extract (Nanjing has footways, steps, ...) would route cars on
# footpaths without this.
_EXCLUDED_HIGHWAYS = frozenset(
    {
        "abandoned", "bridleway", "bus_guideway", "construction", "corridor", "cycleway",
        "elevator", "escalator", "footway", "no", "path", "pedestrian", "planned", "platform",
        "proposed", "raceway", "razed", "rest_area", "service", "services", "steps", "track",
        "bus_stop", "busway", "via_ferrata", "emergency_bay",
    }
)  # fmt: skip
_EXCLUDED_SERVICE = frozenset(
    {"parking", "parking_aisle", "driveway", "private", "emergency_access"}
)

# Way tags osmnx reads (ox.settings.useful_tags_way); the rest would only bloat the temp file.
_KEPT_WAY_TAGS = frozenset(
    {"highway", "oneway", "lanes", "name", "maxspeed", "ref", "junction", "access", "bridge",
     "tunnel", "width", "service"}
)  # fmt: skip
_KEPT_NODE_TAGS = frozenset({"highway", "ref", "traffic_signals", "junction"})


def is_drivable(tags: Mapping[str, str]) -> bool:
    """Say whether a way's tags make it a road a car (and so an emergency vehicle) may use.

    Args:
        tags: the way's OSM tags.

    Returns:
        True for a drivable road, False for anything else (footways, parking aisles, private ...).
    """
    highway = tags.get("highway")
    if highway is None or highway in _EXCLUDED_HIGHWAYS:
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private":
        return False
    if tags.get("motor_vehicle") == "no" or tags.get("motorcar") == "no":
        return False
    return tags.get("service") not in _EXCLUDED_SERVICE


def _runs_of_present(refs: list[int], present: Mapping[int, object]) -> Iterable[list[int]]:
    """Split a way's node list into runs of nodes the file actually holds (at least 2 long).

    A clipped extract keeps ways whole but drops nodes outside its box; osmnx refuses edges
    whose nodes are missing ("Some edges missing nodes"), so such ways are cut at the gaps.
    """
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


def write_drivable_xml(source: Path, target: Path) -> tuple[int, int]:
    """Copy the drivable roads of an OSM file into a clean OSM XML file osmnx can read.

    Args:
        source: an ``.osm`` (XML) or ``.osm.pbf`` file; pyosmium reads both.
        target: where to write the filtered XML (overwritten).

    Returns:
        ``(nodes_written, ways_written)``.

    Raises:
        GraphBuildError: the file is unreadable or holds no drivable road.
    """
    nodes, ways, _ = _write_drivable_xml(source, target)
    return nodes, ways


def _restriction_kind(tags: Mapping[str, str]) -> str | None:
    """The restriction a relation puts on cars, or None (not a restriction, or not for cars)."""
    if tags.get("type") != "restriction":
        return None
    kind = tags.get("restriction:motorcar") or tags.get("restriction")
    if kind not in RESTRICTION_KINDS:
        return None
    exempt = {part.strip() for part in tags.get("except", "").split(";")}
    return None if "motorcar" in exempt else kind


def read_restrictions(source: Path, pieces: Mapping[int, list[int]]) -> list[OsmTurnRestriction]:
    """Read the turn-restriction relations (via a node) of an OSM file.

    Args:
        source: the OSM file.
        pieces: OSM way id -> ids of the pieces it was written as (see ``_write_drivable_xml``);
            a relation naming a way that is not drivable is dropped.

    Returns:
        The restrictions; ``via``-way relations (rare, and a chain of turns) are skipped.
    """
    out: list[OsmTurnRestriction] = []
    try:
        for rel in osmium.FileProcessor(str(source), osmium.osm.RELATION):
            if not isinstance(rel, osmium.osm.Relation):
                continue
            kind = _restriction_kind({tag.k: tag.v for tag in rel.tags})
            if kind is None:
                continue
            froms: set[int] = set()
            tos: set[int] = set()
            vias: list[int] = []
            via_way = False
            for member in rel.members:
                if member.role == "from" and member.type == "w":
                    froms.update(pieces.get(member.ref, []))
                elif member.role == "to" and member.type == "w":
                    tos.update(pieces.get(member.ref, []))
                elif member.role == "via":
                    if member.type == "n":
                        vias.append(member.ref)
                    else:
                        via_way = True
            if froms and tos and len(vias) == 1 and not via_way:
                out.append(
                    OsmTurnRestriction(kind, frozenset(froms), vias[0], frozenset(tos), rel.id)
                )
    except RuntimeError as exc:
        raise GraphBuildError(f"cannot read OSM file {source}: {exc}") from exc
    return out


def _write_drivable_xml(source: Path, target: Path) -> tuple[int, int, dict[int, list[int]]]:
    """:func:`write_drivable_xml`, plus each way's piece ids (for the restriction relations)."""
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    wanted: set[int] = set()
    try:
        for way in osmium.FileProcessor(str(source), osmium.osm.WAY):
            if not isinstance(way, osmium.osm.Way):
                continue
            tags = {tag.k: tag.v for tag in way.tags}
            if not is_drivable(tags):
                continue
            refs = [node.ref for node in way.nodes]
            ways.append((way.id, refs, {k: v for k, v in tags.items() if k in _KEPT_WAY_TAGS}))
            wanted.update(refs)
        nodes: dict[int, tuple[float, float, dict[str, str]]] = {}
        for node in osmium.FileProcessor(str(source), osmium.osm.NODE):
            if isinstance(node, osmium.osm.Node) and node.id in wanted and node.location.valid():
                tags = {tag.k: tag.v for tag in node.tags if tag.k in _KEPT_NODE_TAGS}
                nodes[node.id] = (node.location.lon, node.location.lat, tags)
    except RuntimeError as exc:  # pyosmium reports unreadable input as RuntimeError
        raise GraphBuildError(f"cannot read OSM file {source}: {exc}") from exc
    if not ways:
        raise GraphBuildError(f"{source} holds no drivable road")

    # Split pieces get fresh ids above every real one so osmnx never merges them by id.
    next_id = max(way_id for way_id, _, _ in ways) + 1
    used: set[int] = set()
    pieces: dict[int, list[int]] = {}
    written_ways = 0
    target.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(target)) as writer:
        for node_id in sorted(nodes):
            lon, lat, tags = nodes[node_id]
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), tags=tags))
        for way_id, refs, tags in ways:
            for piece in _runs_of_present(refs, nodes):
                piece_id = way_id
                if way_id in used:
                    piece_id, next_id = next_id, next_id + 1
                used.add(piece_id)
                pieces.setdefault(way_id, []).append(piece_id)
                writer.add_way(osmium.osm.mutable.Way(id=piece_id, nodes=piece, tags=tags))
                written_ways += 1
            used.add(way_id)
    if written_ways == 0:
        raise GraphBuildError(f"{source}: no drivable way has two nodes inside the extract")
    return len(nodes), written_ways, pieces


def read_osm_file(path: Path) -> nx.MultiDiGraph:
    """Read an OSM file into a raw (unsimplified, all components) drive graph.

    Args:
        path: ``.osm`` XML or ``.osm.pbf``.

    Returns:
        The osmnx ``MultiDiGraph``, one-way tags honoured, not simplified.

    Raises:
        GraphBuildError: unreadable file, or no drivable road in it.
    """
    return read_osm(path)[0]


def read_osm(path: Path) -> tuple[nx.MultiDiGraph, list[OsmTurnRestriction]]:
    """:func:`read_osm_file`, plus the file's turn-restriction relations.

    Returns:
        ``(raw graph, restrictions)``; the restrictions name the way ids the graph's edges carry
        in ``osmid`` (a way split at the extract's edge appears under every piece's id).

    Raises:
        GraphBuildError: unreadable file, or no drivable road in it.
    """
    if not path.is_file():
        raise GraphBuildError(f"no such OSM file: {path}")
    with tempfile.TemporaryDirectory(prefix="yishao-osm-") as tmp:
        clean = Path(tmp) / "drive.osm"
        _, _, pieces = _write_drivable_xml(path, clean)
        restrictions = read_restrictions(path, pieces)
        try:
            graph: nx.MultiDiGraph = ox.graph_from_xml(clean, simplify=False, retain_all=True)
        except (ValueError, KeyError) as exc:
            raise GraphBuildError(f"osmnx could not read {path}: {exc}") from exc
    return graph, restrictions


def download_place(place: str) -> nx.MultiDiGraph:
    """Download a place's drive network from OpenStreetMap (needs internet).

    Args:
        place: a name Nominatim can geocode, e.g. "Fuyang District, Hangzhou, Zhejiang, China".

    Returns:
        The raw drive graph (not simplified, all components).

    Raises:
        GraphDownloadError: no network, the geocoder did not find the place, or Overpass refused.
    """
    import requests  # osmnx's own HTTP client; imported here so file builds never need it

    try:
        graph: nx.MultiDiGraph = ox.graph_from_place(
            place, network_type="drive", simplify=False, retain_all=True
        )
    except requests.exceptions.RequestException as exc:
        raise GraphDownloadError(
            f"could not download {place!r} from OpenStreetMap: this needs internet access "
            f"(Nominatim and Overpass). Offline, build from a file instead: --osm FILE. ({exc})"
        ) from exc
    except (ox._errors.InsufficientResponseError, TypeError, ValueError) as exc:
        raise GraphDownloadError(
            f"OpenStreetMap gave no usable road data for {place!r}: {exc}"
        ) from exc
    return graph
