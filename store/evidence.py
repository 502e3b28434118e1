"""Evidence images (the JPEGs of video detections), kept per community and named by an opaque id.

A file lives at ``<root>/<community>/<id>.jpg`` (root: ``<var_dir>/evidence``); ``id`` is 32 hex
digits of the SHA-256 of its bytes. Events and alerts carry the id only, never a path: the id says
nothing about the server, and it is looked up in one community's folder only, so an event of one
community cannot point at another community's image (``docs/video.md``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from core.settings import Settings
from store.keys import COMMUNITY_ID

EVIDENCE_ID = re.compile(r"^[0-9a-f]{32}$")
COMMUNITY_FOLDER = COMMUNITY_ID  # a community id is safe as a folder name


def is_evidence_id(value: object) -> bool:
    """True for an evidence id (32 lowercase hex digits), and for nothing else."""
    return isinstance(value, str) and EVIDENCE_ID.fullmatch(value) is not None


def evidence_id(value: object) -> str | None:
    """The value when it is an evidence id, else None (an old path, anything a producer made up)."""
    return value if isinstance(value, str) and EVIDENCE_ID.fullmatch(value) else None


def folder_name(community: str) -> str:
    """The community's folder name: its id, or (an id unfit for a file name) a digest of it."""
    if COMMUNITY_FOLDER.fullmatch(community):
        return community
    return "c-" + hashlib.sha256(community.encode()).hexdigest()[:32]


def evidence_root(settings: Settings) -> Path:
    """The folder of every community's evidence."""
    return settings.var_dir / "evidence"


class CommunityEvidence:
    """One community's evidence folder: the only place its ids are looked up."""

    def __init__(self, root: Path, community: str) -> None:
        self.community = community
        self.folder = root / folder_name(community)

    def put(self, jpeg: bytes) -> str:
        """Store a JPEG and return its id (the same bytes give the same id and the same file)."""
        eid = hashlib.sha256(jpeg).hexdigest()[:32]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{eid}.jpg"
        tmp = path.with_name(f"{eid}.{os.getpid()}.tmp")
        tmp.write_bytes(jpeg)
        tmp.replace(path)  # readers never see half a file
        return eid

    def path(self, value: object) -> Path | None:
        """The file of an evidence id in this community's folder, or None (not an id, no such file, or a
        link that leads out of the folder)."""
        eid = evidence_id(value)
        if eid is None:
            return None
        try:
            path = (self.folder / f"{eid}.jpg").resolve(strict=True)
        except OSError:
            return None
        return path if path.parent == self.folder.resolve() and path.is_file() else None

    def reference(self, value: object) -> str | None:
        """The evidence id a producer's ``image`` reference stands for in this community, or None.

        An id is taken as it is. A path (what producers sent before ids) is accepted only when it
        resolves to an existing ``<id>.jpg`` in this community's folder; anything else, such as a
        file of another community or outside the evidence folder, stands for nothing.
        """
        if is_evidence_id(value):
            return str(value)
        if not isinstance(value, str) or not value or len(value) > 4096:
            return None
        try:
            path = Path(value).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        eid = evidence_id(path.name.removesuffix(".jpg")) if path.suffix == ".jpg" else None
        return eid if eid is not None and self.path(eid) == path else None


class EvidenceStore:
    """Every community's evidence under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of_settings(cls, settings: Settings) -> EvidenceStore:
        """The store under ``<var_dir>/evidence``."""
        return cls(evidence_root(settings))

    def community(self, community: str) -> CommunityEvidence:
        """One community's folder."""
        return CommunityEvidence(self.root, community)
