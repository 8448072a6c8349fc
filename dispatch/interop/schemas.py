"""The standards' own schemas, read in place from the shared standards folder.

* EIDO (NENA-STA-021 JSON schema, an OpenAPI 3.0.2 document with NIEM components): loaded with
  the two loader fixes PROVENANCE.md names (``minItems: 1,`` read by YAML as the string ``"1,"``,
  and the reference written ``NIEMComponents//j.yaml``), validated with jsonschema (draft 4,
  which OpenAPI 3.0 schema objects follow) and ``date-time`` checked by rfc3339-validator.
* CAP 1.2: the OASIS XSD through xmlschema, plus the root-element check the XSD cannot make.
* J2735 / ISO TS 19091: see :mod:`dispatch.interop.j2735` (asn1tools compiles the module).

Schemas are loaded once per folder and process (they take a second or two), never at import.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit, urlunsplit
from xml.etree import ElementTree

import jsonschema
import referencing
import referencing.jsonschema
import xmlschema
import yaml
from jsonschema.exceptions import ValidationError

from dispatch.interop.errors import InvalidCapError, InvalidEidoError, StandardsMissingError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_ROOT = f"{{{CAP_NS}}}alert"
EIDO_ROOT_TYPE = "EmergencyIncidentDataObjectType"
# At most this many schema complaints are reported for one document.
MAX_COMPLAINTS = 5


def default_standards_dir() -> Path:
    """``../shared/data/standards`` beside the repository (``YISHAO_SHARED_DIR`` wins)."""
    shared = os.environ.get("YISHAO_SHARED_DIR")
    if shared:
        return Path(shared) / "data" / "standards"
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "standards").resolve()


def resolve_standards_dir(explicit: Path | None = None) -> Path:
    """The standards folder: ``explicit`` (a setting), else ``YISHAO_STANDARDS_DIR``, else the
    default beside the repository."""
    if explicit is not None:
        return explicit
    env = os.environ.get("YISHAO_STANDARDS_DIR")
    return Path(env) if env else default_standards_dir()


# -- YAML without YAML 1.1's surprises ---------------------------------------------------------
class _SchemaLoader(yaml.SafeLoader):
    """Safe YAML that leaves timestamps as strings (a schema is JSON: no datetime objects)."""


_SchemaLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}

_COUNT_KEYWORDS = frozenset(
    {"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"}
)
_STRAY_COUNT = re.compile(r"^\s*(\d+)\s*,?\s*$")


@dataclass
class LoaderFixes:
    """What the EIDO loader mended, as ``file: keyword at path: before -> after`` lines."""

    applied: list[str] = field(default_factory=list)


def _mend(node: Any, *, where: str, path: str, fixes: LoaderFixes) -> Any:
    """Mend the two kinds of defect found in NENA's files, wherever they occur.

    A count keyword given as a string (``minItems: 1,``) would make jsonschema fail on every
    document that reaches it; a reference with ``//`` in its path names a file that exists only
    by accident of how a filesystem reads ``//``. Anything else is left exactly as published.
    """
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = f"{path}/{key}"
            if key in _COUNT_KEYWORDS and isinstance(value, str):
                match = _STRAY_COUNT.match(value)
                if match:
                    fixes.applied.append(f"{where}: {key} at {path}: {value!r} -> {match[1]}")
                    out[key] = int(match[1])
                    continue
            if key == "$ref" and isinstance(value, str) and "//" in urldefrag(value).url:
                parts = urlsplit(value)
                if not parts.scheme:  # a relative reference: collapse the doubled slash
                    mended = urlunsplit(parts._replace(path=re.sub("/{2,}", "/", parts.path)))
                    fixes.applied.append(f"{where}: $ref at {path}: {value!r} -> {mended!r}")
                    out[key] = mended
                    continue
            out[key] = _mend(value, where=where, path=here, fixes=fixes)
        return out
    if isinstance(node, list):
        return [_mend(v, where=where, path=f"{path}/{i}", fixes=fixes) for i, v in enumerate(node)]
    return node


def load_schema_yaml(path: Path, *, fixes: LoaderFixes | None = None, root: Path) -> Any:
    """One YAML file of the EIDO schema, mended (see :func:`_mend`)."""
    with path.open(encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=_SchemaLoader)  # a SafeLoader subclass
    return _mend(raw, where=str(path.relative_to(root)), path="#", fixes=fixes or LoaderFixes())


# -- EIDO ---------------------------------------------------------------------------------------
_DRAFT4 = referencing.jsonschema.DRAFT4


class EidoSchema:
    """The EIDO JSON schema with the loader fixes, and a validator that names fields.

    Args:
        folder: the ``eido/`` folder (``openapi.yaml`` and ``NIEMComponents/``).

    Raises:
        StandardsMissingError: the folder or ``openapi.yaml`` is absent.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        main = self.folder / "openapi.yaml"
        if not main.is_file():
            raise StandardsMissingError(f"EIDO schema not found at {main}")
        self.fixes = LoaderFixes()
        self.base_uri = main.as_uri()
        self.document: dict[str, Any] = load_schema_yaml(main, fixes=self.fixes, root=self.folder)
        self._resources: dict[str, referencing.Resource[Any]] = {}
        registry: referencing.Registry[Any] = referencing.Registry(retrieve=self._retrieve)  # type: ignore[call-arg]
        registry = registry.with_resource(self.base_uri, _DRAFT4.create_resource(self.document))
        self.validator = jsonschema.Draft4Validator(
            {"$ref": f"{self.base_uri}#/components/schemas/{EIDO_ROOT_TYPE}"},
            registry=registry,
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )

    def _retrieve(self, uri: str) -> referencing.Resource[Any]:
        # NIEM component files are loaded when a document first reaches them (nc.yaml alone is
        # 380 kB), each mended like the main file; nothing outside the folder is ever read.
        # The registry is immutable, so a validator would retrieve (and parse) the same file
        # again for every document: each file is loaded once and kept here.
        known = self._resources.get(uri)
        if known is not None:
            return known
        target = Path(urlsplit(uri).path).resolve()
        if self.folder not in target.parents or not target.is_file():
            raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]
        contents = load_schema_yaml(target, fixes=self.fixes, root=self.folder)
        resource: referencing.Resource[Any] = _DRAFT4.create_resource(contents)
        self._resources[uri] = resource
        return resource

    def complaints(self, document: Any) -> list[str]:
        """Up to :data:`MAX_COMPLAINTS` schema complaints, each naming its field; [] if valid.

        The messages never quote the document's values (they may hold a caller's number).
        """
        errors = sorted(self.validator.iter_errors(document), key=_relevance)
        out: list[str] = []
        for error in errors:
            for leaf in _leaves(error):
                text = f"{field_path(leaf.absolute_path)}: {_describe(leaf)}"
                if text not in out:
                    out.append(text)
                if len(out) >= MAX_COMPLAINTS:
                    return out
        return out

    def validate(self, document: Any) -> None:
        """Raise :class:`InvalidEidoError` (naming the first bad field) unless ``document`` is a
        valid EIDO."""
        found = self.complaints(document)
        if found:
            first = found[0]
            raise InvalidEidoError("; ".join(found), field=first.split(":", 1)[0], complaints=found)

    def published(self) -> dict[str, Any]:
        """The mended schema as one JSON document (what ``yishao schema eido`` prints).

        References into ``NIEMComponents/`` stay relative to the ``eido/`` folder.
        """
        return {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "$comment": (
                "NENA EIDO (NENA-STA-021) components from openapi.yaml, with Yishao's loader "
                "fixes: " + "; ".join(self.fixes.applied)
            ),
            "$ref": f"#/components/schemas/{EIDO_ROOT_TYPE}",
            "components": self.document["components"],
        }


def _relevance(error: ValidationError) -> tuple[int, int]:
    return (-len(error.absolute_path), 0 if error.validator == "required" else 1)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The innermost errors of an error (allOf / anyOf wrap the real complaint)."""
    if error.context:
        for sub in sorted(error.context, key=_relevance):
            yield from _leaves(sub)
    else:
        yield error


def field_path(parts: Any) -> str:
    """``callComponent[0].callStartTimestamp`` from a jsonschema path (``(root)`` when empty)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _describe(error: ValidationError) -> str:
    """What is wrong, from the schema's side only (no instance value is quoted)."""
    rule, want = error.validator, error.validator_value
    instance: Any = error.instance
    if rule == "required":
        names = [str(n) for n in want] if isinstance(want, list) else []
        missing = [n for n in names if isinstance(instance, Mapping) and n not in instance]
        return f"missing required field {', '.join(missing or names)}"
    if rule == "type":
        return f"must be of type {want}"
    if rule == "enum" and isinstance(want, list):
        shown = ", ".join(repr(v) for v in want[:12])
        return f"must be one of {shown}{', ...' if len(want) > 12 else ''}"
    if rule == "format":
        return f"must be a valid {want}"
    if rule in {"minItems", "maxItems", "minLength", "maxLength"}:
        return f"violates {rule} {want}"
    if rule == "$ref":
        return f"cannot be checked: reference {want} does not resolve"
    return f"fails the schema's {rule} rule"


@functools.cache
def eido_schema(standards: Path) -> EidoSchema:
    """The EIDO schema of a standards folder, loaded once per process."""
    return EidoSchema(standards / "eido")


# -- CAP 1.2 --------------------------------------------------------------------------------------
class CapSchema:
    """The OASIS CAP 1.2 XSD, and the root check it cannot make itself.

    Raises:
        StandardsMissingError: the XSD is absent.
    """

    def __init__(self, xsd: Path) -> None:
        if not xsd.is_file():
            raise StandardsMissingError(f"CAP 1.2 XSD not found at {xsd}")
        self.path = xsd
        self.schema = xmlschema.XMLSchema(str(xsd))

    def complaints(self, document: bytes) -> list[str]:
        """Why ``document`` is not a CAP 1.2 alert ([] when it is)."""
        try:
            root = ElementTree.fromstring(document)
        except ElementTree.ParseError as exc:
            return [f"not well-formed XML: {exc}"]
        if root.tag != CAP_ROOT:
            # The XSD declares <valueName> and <value> as global elements too, so a lone
            # <value> would pass schema validation.
            return [f"root element must be {CAP_ROOT}, not {root.tag}"]
        out: list[str] = []
        for error in self.schema.iter_errors(root):
            where = error.path or "/"
            out.append(f"{where}: {error.reason or error.message}")
            if len(out) >= MAX_COMPLAINTS:
                break
        return out

    def validate(self, document: bytes) -> None:
        """Raise :class:`InvalidCapError` unless ``document`` is a valid CAP 1.2 alert."""
        found = self.complaints(document)
        if found:
            raise InvalidCapError("; ".join(found))

    def published(self) -> str:
        """The XSD text (what ``yishao schema cap`` prints)."""
        return self.path.read_text(encoding="utf-8")


@functools.cache
def cap_schema(standards: Path) -> CapSchema:
    """The CAP 1.2 schema of a standards folder, loaded once per process."""
    return CapSchema(standards / "cap" / "CAP-v1.2.xsd")


def published_schema(name: str, standards: Path) -> str:
    """The text ``yishao schema NAME`` prints for a standard message: ``eido`` (JSON Schema),
    ``cap`` (XSD) or ``j2735`` (the ASN.1 module and Yishao's stand-ins for its imports).

    Raises:
        KeyError: not a standard's name.
        StandardsMissingError: the standards folder lacks that schema.
    """
    import json

    if name == "eido":
        return json.dumps(eido_schema(standards).published(), indent=2, ensure_ascii=False)
    if name == "cap":
        return cap_schema(standards).published()
    if name == "j2735":
        from dispatch.interop.j2735 import published_asn1

        return published_asn1(standards)
    raise KeyError(name)


STANDARD_SCHEMAS: tuple[str, ...] = ("cap", "eido", "j2735")
