"""Line breaking for mixed Chinese and Latin text (pure functions).

Chinese may break between any two characters, Latin words only at spaces; and by the usual rules
(禁则) a line never starts with closing punctuation (，。、；：！？）》」 …) nor ends with opening
punctuation (（《「“ …). Each such mark is glued to its neighbour before the greedy fill."""

from __future__ import annotations

from collections.abc import Callable

NO_LINE_START = frozenset("，。、；：！？）》」』】〕〉”’…—·%‰,.;:!?)]}>/")
NO_LINE_END = frozenset("（《「『【〔〈“‘([{<#$￥")


def is_wide(char: str) -> bool:
    """True for characters that may break on either side (CJK ideographs, kana, full-width forms)."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK symbols and punctuation, kana, ideographs
        or 0xF900 <= code <= 0xFAFF
        or 0xFE30 <= code <= 0xFE4F
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF
    )


def tokens(text: str) -> list[str]:
    """Unbreakable pieces: a wide character, a Latin word, or a run of spaces; punctuation glued on."""
    pieces: list[str] = []
    word = ""
    for char in text:
        if char == " ":
            if word:
                pieces.append(word)
                word = ""
            if pieces and pieces[-1].isspace():
                pieces[-1] += char
            else:
                pieces.append(char)
        elif is_wide(char) or (not char.isascii() and (char in NO_LINE_START or char in NO_LINE_END)):
            if word:
                pieces.append(word)
                word = ""
            pieces.append(char)
        else:
            word += char
    if word:
        pieces.append(word)
    glued: list[str] = []
    carry = ""  # opening marks waiting for the piece they belong to
    for piece in pieces:
        if piece.isspace():
            glued.append(piece)
        elif piece in NO_LINE_END:
            carry += piece
        else:
            whole, carry = carry + piece, ""
            if whole[0] in NO_LINE_START and glued and not glued[-1].isspace():
                glued[-1] += whole
            else:
                glued.append(whole)
    if carry:
        glued.append(carry)
    return glued


def _split_long(piece: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """A piece wider than the line, cut by characters."""
    parts, current = [], ""
    for char in piece:
        if current and measure(current + char) > width:
            parts.append(current)
            current = char
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """The text broken into lines no wider than width (explicit newlines kept)."""
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        current = ""
        for piece in tokens(paragraph):
            if piece.isspace():
                if current:
                    current += piece
                continue
            candidate = current + piece
            if measure(candidate.rstrip()) <= width:
                current = candidate
                continue
            if current.strip():
                lines.append(current.rstrip())
            if measure(piece) <= width:
                current = piece
            else:
                *full, current = _split_long(piece, width, measure)
                lines.extend(full)
        lines.append(current.rstrip())
    return lines
