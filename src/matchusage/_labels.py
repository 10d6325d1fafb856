"""How one report writes its instants, periods and programs, on the terminal and in HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from ._model import Program
from ._periods import BillingPeriod
from ._text import printable


def _fits_dates(instants: Sequence[datetime], zone: tzinfo) -> bool:
    return all(t.astimezone(zone).time() == datetime.min.time() for t in instants)


class Labels:
    """How instants and programs are written in one report's output."""

    def __init__(
        self,
        zone: tzinfo,
        periods: Sequence[BillingPeriod],
        programs: Sequence[Program],
        *,
        ascii_only: bool = False,
    ):
        self.zone = zone
        self.ascii_only = ascii_only
        self.arrow = "->" if ascii_only else "→"
        bounds = [p.start for p in periods] + [p.end for p in periods]
        self.dates_only = _fits_dates(bounds, zone)
        self.names = {p.id: p.name or p.id for p in programs}
        self.program_ids = [p.id for p in programs]

    def instant(self, value: datetime) -> str:
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def boundary(self, value: datetime) -> str:
        local = value.astimezone(self.zone)
        return local.strftime("%Y-%m-%d" if self.dates_only else "%Y-%m-%d %H:%M")

    def period(self, period: BillingPeriod) -> str:
        return f"{self.boundary(period.start)} {self.arrow} {self.boundary(period.end)}"

    def program(self, program_id: str) -> str:
        """The program's name (or id) as a table shows it: no escape sequences, no overrides."""
        return printable(self.names.get(program_id, program_id))

    def programs_in(self, *mappings: Mapping[str, object]) -> list[str]:
        """Known programs first (in order), then any other program id seen."""
        seen = {key for mapping in mappings for key in mapping}
        return self.program_ids + sorted(seen - set(self.program_ids))
