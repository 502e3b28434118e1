"""What the report's sections share: bounded IN lists, scrubbing typed notes, the period's alerts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from core.timefmt import aware
from reports import calc
from store.alert_models import AlertRecord

Progress = Callable[[int, str], None]
T = TypeVar("T")
CHUNK = 500
ID_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most size items (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def scrub(text: str) -> str:
    """Free text with any ID number or mobile number in it masked (notes typed by people)."""
    text = ID_NUMBER_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


@dataclass
class Alert:
    """An alert of the period with its steps."""

    record: AlertRecord
    steps: list[calc.Step] = field(default_factory=list)

    @property
    def detected(self) -> dt.datetime:
        """When the rule fired (aware UTC)."""
        return aware(self.record.detected_at)

    @property
    def human(self) -> bool:
        """True when a person took any step."""
        return any(calc.is_human(s) for s in self.steps)

    @property
    def kind(self) -> str:
        """How it ended: handled / auto / false_alarm / open."""
        return calc.handling_kind([self.record.status], self.human)
