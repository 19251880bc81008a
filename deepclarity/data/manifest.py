"""Reading the data manifest: sets of files pinned to a public repository, a commit and checksums.

Two layouts are read. The shipped one (``manifest.json.gz`` beside this module, written by
``tools/build_manifest.py``) is ``{"format": 1, "sets": {SET: {"description": ..., "files":
[...]}}}``; the shared one it is generated from (``MANIFEST.json`` of a datasets folder) is
``{SET: [...]}``. Each file record has ``file`` (relative to the set's parent folder, e.g.
``bsds400/100075.jpg`` in ``train/bsds400``), ``source`` (``owner/repo:path``), ``commit``,
``upstream_sha256``, ``transform``, ``sha256`` (the file as staged), ``pixels_sha256`` (its decoded
pixels) and, in the shipped layout, ``bytes``.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ..errors import DeepClarityError

__all__ = ["DEFAULT_BASE_URL", "MANIFEST_FORMAT", "Entry", "SetInfo", "Manifest", "load_manifest",
           "parse_manifest", "base_url"]

#: Where a pinned file is downloaded from: ``<base>/<owner>/<repo>/<commit>/<path>``.
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
MANIFEST_FORMAT = 1
SHIPPED = "manifest.json.gz"
_REQUIRED = ("file", "source", "commit", "upstream_sha256", "sha256", "pixels_sha256", "transform")


@dataclass(frozen=True)
class Entry:
    """One file of a set, as the manifest records it."""

    set: str
    file: str
    repo: str
    source_path: str
    commit: str
    upstream_sha256: str
    sha256: str
    pixels_sha256: str
    transform: str
    mode: str | None = None
    size: tuple[int, int] | None = None
    bytes: int | None = None

    @property
    def path(self) -> str:
        """Where the file goes under the datasets root (POSIX form), e.g. ``train/bsds400/1.jpg``."""
        parent = PurePosixPath(self.set).parent
        return (parent / self.file).as_posix()

    @property
    def source(self) -> str:
        return f"{self.repo}:{self.source_path}"

    @property
    def url_path(self) -> str:
        """``/<owner>/<repo>/<commit>/<path>`` (URL-quoted): the upstream file at its pinned commit."""
        return f"/{self.repo}/{self.commit}/{quote(self.source_path)}"

    def url(self, base: str | None = None) -> str:
        """The download address of the upstream file under ``base`` (default :data:`DEFAULT_BASE_URL`)."""
        return (base or DEFAULT_BASE_URL).rstrip("/") + self.url_path


@dataclass
class SetInfo:
    name: str
    description: str = ""
    entries: list[Entry] = field(default_factory=list)

    @property
    def repos(self) -> list[tuple[str, str]]:
        """``(owner/repo, commit)`` pairs the set comes from, in first-seen order."""
        return list(dict.fromkeys((e.repo, e.commit) for e in self.entries))

    @property
    def bytes(self) -> int | None:
        sizes = [e.bytes for e in self.entries]
        return None if any(b is None for b in sizes) else sum(sizes)


class Manifest:
    """The sets of a manifest, in the manifest's order."""

    def __init__(self, sets: dict[str, SetInfo], origin: str = "") -> None:
        self.sets = sets
        self.origin = origin

    def __iter__(self):
        return iter(self.sets.values())

    def __len__(self) -> int:
        return len(self.sets)

    @property
    def entries(self) -> list[Entry]:
        return [e for s in self.sets.values() for e in s.entries]

    def select(self, names: list[str] | None = None) -> list[SetInfo]:
        """The sets named on the command line (all of them when ``names`` is empty).

        A name may be a set (``train/bsds400``), its last part (``bsds400``, ``Set5``; any case)
        or a top-level folder (``train``, ``benchmark``).

        Raises:
            DeepClarityError: a name matches no set (the message lists the known ones).
        """
        if not names:
            return list(self.sets.values())
        chosen: dict[str, SetInfo] = {}
        for raw in names:
            name = raw.strip("/")
            hits = [s for key, s in self.sets.items()
                    if key == name or key.lower().rsplit("/", 1)[-1] == name.lower()
                    or key.split("/", 1)[0] == name]
            if not hits:
                raise DeepClarityError(f"unknown data set {raw!r}; known: {', '.join(self.sets)} "
                                       "(or train, benchmark)")
            chosen.update((s.name, s) for s in hits)
        return [s for key, s in self.sets.items() if key in chosen]


def base_url(explicit: str | None = None) -> str:
    """``explicit`` (``--base-url``), else ``$DEEPCLARITY_DATA_URL``, else :data:`DEFAULT_BASE_URL`."""
    return (explicit or os.environ.get("DEEPCLARITY_DATA_URL") or DEFAULT_BASE_URL).rstrip("/")


def _entry(set_name: str, rec: dict) -> Entry:
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise DeepClarityError(f"manifest: {set_name}: a file record lacks {', '.join(missing)}: {rec}")
    repo, sep, path = rec["source"].partition(":")
    rel = PurePosixPath(rec["file"])
    if not sep or repo.count("/") != 1 or not path:
        raise DeepClarityError(f"manifest: {set_name}: bad source {rec['source']!r} (want owner/repo:path)")
    if rel.is_absolute() or ".." in rel.parts or "\\" in rec["file"]:
        raise DeepClarityError(f"manifest: {set_name}: unsafe file name {rec['file']!r}")
    size = rec.get("size")
    return Entry(set=set_name, file=rec["file"], repo=repo, source_path=path, commit=rec["commit"],
                 upstream_sha256=rec["upstream_sha256"], sha256=rec["sha256"],
                 pixels_sha256=rec["pixels_sha256"], transform=rec["transform"], mode=rec.get("mode"),
                 size=tuple(size) if size else None, bytes=rec.get("bytes"))


def parse_manifest(doc: dict, origin: str = "") -> Manifest:
    """A :class:`Manifest` from either layout (see the module docstring)."""
    if not isinstance(doc, dict):
        raise DeepClarityError(f"manifest {origin}: not a JSON object")
    if "format" in doc:
        if doc["format"] != MANIFEST_FORMAT:
            raise DeepClarityError(f"manifest {origin}: format {doc['format']} is not supported by this "
                                   f"version (it reads format {MANIFEST_FORMAT}); upgrade deepclarity")
        raw = {name: (s.get("description", ""), s["files"]) for name, s in doc["sets"].items()}
    else:
        raw = {name: ("", files) for name, files in doc.items()}
    sets = {name: SetInfo(name, desc, [_entry(name, rec) for rec in files]) for name, (desc, files) in raw.items()}
    return Manifest(sets, origin)


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """The shipped manifest, or the one at ``path`` (``.json`` or ``.json.gz``, either layout).

    Raises:
        DeepClarityError: the file is missing or not a manifest.
    """
    try:
        if path is None:
            blob = resources.files(__package__).joinpath(SHIPPED).read_bytes()
            origin = f"{__package__}/{SHIPPED}"
        else:
            blob = Path(path).read_bytes()
            origin = str(path)
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
        doc = json.loads(blob)
    except (OSError, ValueError, EOFError) as exc:
        where = path or f"{__package__}/{SHIPPED}"
        raise DeepClarityError(f"cannot read the data manifest {where}: {exc}") from None
    return parse_manifest(doc, origin)
