"""Where the installed SUMO lives (the ``eclipse-sumo`` wheel), and the environment its tools need.

SUMO's tools and libsumo read ``SUMO_HOME`` (type maps, XML schemas) and PROJ's ``proj.db`` for the
UTM projection of an OSM import. A stale ``SUMO_HOME`` from the shell (another SUMO version) gives
wrong defaults or schema errors, so both are set from the installed package, never taken from the
environment.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


class SumoMissingError(RuntimeError):
    """SUMO is not installed: ``pip install -e '.[sumo]'`` (``make setup`` does it)."""


@cache
def sumo_home() -> Path:
    """The installed SUMO's home folder; sets ``SUMO_HOME`` and ``PROJ_DATA`` for this process.

    Raises:
        SumoMissingError: the ``eclipse-sumo`` package is not installed.
    """
    try:
        import sumo  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise SumoMissingError(
            "SUMO is not installed: pip install -e '.[sumo]' (make setup installs it)"
        ) from exc
    home = Path(sumo.SUMO_HOME).resolve()
    previous = os.environ.get("SUMO_HOME")
    if previous and Path(previous).resolve() != home:
        log.info("SUMO_HOME was %s; using the installed package's %s", previous, home)
    os.environ["SUMO_HOME"] = str(home)
    proj = home / "data" / "proj"
    if proj.is_dir():
        os.environ["PROJ_DATA"] = os.environ["PROJ_LIB"] = str(proj)
    return home


def sumo_binary(name: str) -> Path:
    """Path of one of SUMO's programs (``netconvert``, ``sumo``, ``duarouter`` ...).

    Raises:
        SumoMissingError: SUMO or that program is not installed.
    """
    path = sumo_home() / "bin" / name
    if not path.is_file():
        raise SumoMissingError(f"SUMO has no program {name} at {path}")
    return path


def sumo_env() -> dict[str, str]:
    """The environment for a SUMO subprocess: this one with SUMO_HOME and PROJ_DATA set."""
    sumo_home()
    return dict(os.environ)


def sumo_version() -> str:
    """The installed ``eclipse-sumo`` version (e.g. ``1.28.0``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eclipse-sumo")
    except PackageNotFoundError as exc:
        raise SumoMissingError("SUMO is not installed: pip install -e '.[sumo]'") from exc
