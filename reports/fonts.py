"""The CJK font of the reports: Noto Sans CJK SC from Debian's ``fonts-noto-cjk`` (never copied into the
repository). The package ships OpenType collections (.ttc) with CFF outlines; fpdf2 embeds them as
CID-keyed CFF subsets and matplotlib reads them through FreeType, so both use the same face."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import SandtableError
from core.settings import Settings

FONT_PACKAGE = "fonts-noto-cjk"
FAMILY = "Noto Sans CJK SC"  # the Simplified Chinese face: 直、骨、门 drawn the mainland way


class MissingFont(SandtableError):
    """The reports' CJK font is not installed."""


@dataclass(frozen=True)
class Face:
    """One face of a font file (collections hold several)."""

    path: Path
    index: int
    name: str


@dataclass(frozen=True)
class ReportFonts:
    """The regular and bold faces of the reports."""

    regular: Face
    bold: Face


@lru_cache(maxsize=8)
def find_face(path: Path, family: str = FAMILY) -> Face:
    """The face of ``family`` in a font file or collection; MissingFont naming the package when absent."""
    if not path.is_file():
        raise MissingFont(
            f"the reports' CJK font {path} is missing (install the Debian package {FONT_PACKAGE}, "
            "or set SANDTABLE_REPORT_FONT_REGULAR/_BOLD)"
        )
    from fontTools.ttLib import TTCollection, TTFont, TTLibError  # noqa: PLC0415 — heavy, one export format only

    try:
        opened = TTCollection(str(path), lazy=True) if path.suffix.lower() in (".ttc", ".otc") else None
        fonts = list(opened.fonts) if opened is not None else [TTFont(str(path), lazy=True)]
        try:
            names = [str(font["name"].getDebugName(1) or "") for font in fonts]
        finally:
            for font in fonts:
                font.close()
    except (TTLibError, OSError, KeyError) as err:
        raise MissingFont(f"the reports' CJK font {path} cannot be read ({err}); reinstall {FONT_PACKAGE}") from err
    if family in names:
        return Face(path, names.index(family), family)
    if len(names) == 1:
        return Face(path, 0, names[0])  # a single-face CJK font configured on purpose
    raise MissingFont(f"{path} has no {family} face (found: {', '.join(names) or 'none'}); install {FONT_PACKAGE}")


def report_fonts(settings: Settings) -> ReportFonts:
    """The faces the PDFs and charts use; MissingFont (one line naming the package) when absent."""
    return ReportFonts(find_face(settings.report_font_regular), find_face(settings.report_font_bold))


def matplotlib_family(fonts: ReportFonts) -> str:
    """Make the regular and bold faces known to matplotlib; returns the family name to use."""
    from matplotlib import font_manager  # noqa: PLC0415 — heavy, one export format only

    known = {(Path(entry.fname), entry.name) for entry in font_manager.fontManager.ttflist}
    for face in (fonts.regular, fonts.bold):
        if (face.path, face.name) not in known:
            font_manager.fontManager.addfont(str(face.path))
    return fonts.regular.name
