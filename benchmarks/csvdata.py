"""Write one organization's data directory in the documented input format, for benchmarks.

    python benchmarks/csvdata.py DIR [--matches 1000000] [--seed 7] [--format jsonl]

``DIR`` gets ``organization.json``, ``programs.csv``, ``users.csv`` and
``matches.csv`` (or ``.jsonl`` files with ``--format jsonl``, participants
as ``{"user_id": ..., "role": ...}`` objects, ongoing matches' ``ended_at``
null): matches over the three years before 2026-07-01, ~2.3
participants each (mentor and mentee, some groups with roles), 30%
ongoing, instants with the Europe/Berlin offset of their date and
microseconds, users drawn from a pool of 0.8 per match, 8 programs.
The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np

NOW = datetime(2026, 7, 1, tzinfo=timezone.utc)
ZONE = "Europe/Berlin"
PROGRAMS = 8


def _offsets(micros: np.ndarray) -> np.ndarray:
    """Europe/Berlin's UTC offset in seconds (summer time from the last Sunday of March)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE)
    days = micros // 86_400_000_000
    out = np.empty(len(micros), dtype=np.int64)
    for day in np.unique(days).tolist():
        instant = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=day, hours=12)
        offset = instant.astimezone(zone).utcoffset()
        assert offset is not None
        out[days == day] = int(offset.total_seconds())
    return out


def _iso(micros: np.ndarray) -> list[str]:
    """ISO 8601 text with the local offset, e.g. 2025-07-07T22:44:29.954368+02:00."""
    offsets = _offsets(micros)
    local = (micros + offsets * 1_000_000).astype("datetime64[us]")
    text = np.datetime_as_string(local, unit="us")
    signs = np.where(offsets >= 0, "+", "-")
    hours = np.abs(offsets) // 3600
    minutes = np.abs(offsets) % 3600 // 60
    suffix = [f"{s}{h:02d}:{m:02d}" for s, h, m in zip(signs, hours, minutes, strict=True)]
    return [t + z for t, z in zip(text.tolist(), suffix, strict=True)]


def write(directory: str, matches: int, seed: int = 7, format: str = "csv") -> None:
    """Write the files of one organization with *matches* matches into *directory*.

    *format* is ``"csv"`` or ``"jsonl"`` (programs, users and matches).
    """
    rng = np.random.default_rng([seed, matches])
    os.makedirs(directory, exist_ok=True)
    now = (NOW - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    start = now - rng.integers(0, 3 * 365 * 86_400_000_000, matches)
    duration = (rng.exponential(120, matches) * 86_400_000_000).astype(np.int64)
    end = np.minimum(start + duration, now)
    ongoing = rng.random(matches) < 0.3
    sizes = rng.choice([2, 3, 4], size=matches, p=[0.8, 0.15, 0.05])
    pool = max(4, int(0.8 * matches))
    program = rng.integers(0, PROGRAMS, matches)

    with open(os.path.join(directory, "organization.json"), "w") as file:
        cycle = {"anchor": "2024-01-01T00:00:00+01:00", "unit": "month", "every": 1}
        json.dump({"id": "acme", "name": "Acme", "timezone": ZONE, "cycle": cycle}, file)
    jsonl = format == "jsonl"
    with open(os.path.join(directory, f"programs.{format}"), "w") as file:
        if jsonl:
            file.writelines(f'{{"id": "p{n}", "name": "Program {n}"}}\n' for n in range(PROGRAMS))
        else:
            file.write("id,name\n")
            file.writelines(f"p{n},Program {n}\n" for n in range(PROGRAMS))
    with open(os.path.join(directory, f"users.{format}"), "w") as file:
        if jsonl:
            file.writelines(
                f'{{"id": "u{n}", "name": "User {n}", "email": "u{n}@acme.example"}}\n'
                for n in range(pool)
            )
        else:
            file.write("id,name,email\n")
            file.writelines(f"u{n},User {n},u{n}@acme.example\n" for n in range(pool))

    starts, ends = _iso(start), _iso(end)
    users = rng.integers(0, pool, int(sizes.sum())).tolist()
    with open(os.path.join(directory, f"matches.{format}"), "w") as file:
        if not jsonl:
            file.write("id,program_id,participants,started_at,ended_at\n")
        first = 0
        for row in range(matches):
            size = int(sizes[row])
            people = dict.fromkeys(users[first : first + size])
            first += size
            cells = [f"u{user}" for user in people]
            cells[0] += ":mentor"
            if len(cells) == 2:
                cells[1] += ":mentee"
            ended = "" if ongoing[row] else ends[row]
            if jsonl:
                file.write(_json_match(row, int(program[row]), cells, starts[row], ended))
            else:
                file.write(f"m{row},p{program[row]},{';'.join(cells)},{starts[row]},{ended}\n")


def _json_match(row: int, program: int, cells: list[str], started: str, ended: str) -> str:
    """One line of matches.jsonl; *cells* are ``user[:role]`` as in the CSV file."""
    people = []
    for cell in cells:
        user, _, role = cell.partition(":")
        people.append({"user_id": user, "role": role} if role else {"user_id": user})
    record = {
        "id": f"m{row}",
        "program_id": f"p{program}",
        "participants": people,
        "started_at": started,
        "ended_at": ended or None,
    }
    return json.dumps(record) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--matches", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    args = parser.parse_args()
    write(args.directory, args.matches, args.seed, args.format)


if __name__ == "__main__":
    main()
