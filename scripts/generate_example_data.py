"""Write the bundled example organization to ``src/matchusage/_data/northwind/``.

Run once (``python scripts/generate_example_data.py``); the package ships the
files it writes and never runs this script. The data is deterministic: the
same seed writes the same files.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pendulum

OUT = Path(__file__).parent.parent / "src" / "matchusage" / "_data" / "northwind"
NOW = pendulum.datetime(2026, 11, 20, 9, 30, tz="Europe/Berlin")
ZONE = "Europe/Berlin"
PROGRAMS = [
    ("engineering", "Engineering Mentorship"),
    ("leadership", "Leadership Circle"),
    ("onboarding", "New Hire Buddies"),
]


def main(seed: int = 2026) -> None:
    rng = random.Random(seed)
    anchor = pendulum.datetime(2024, 11, 15, tz=ZONE)
    OUT.mkdir(parents=True, exist_ok=True)
    settings = {
        "id": "northwind",
        "name": "Northwind Mentoring",
        "timezone": ZONE,
        "cycle": {"anchor": anchor.isoformat(), "unit": "month", "every": 1},
    }
    (OUT / "organization.json").write_text(json.dumps(settings, indent=2) + "\n")
    with (OUT / "programs.csv").open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["id", "name"])
        writer.writerows(PROGRAMS)
    users = [f"u{n:03d}" for n in range(1, 301)]
    with (OUT / "users.csv").open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["id", "name", "email"])
        for user in users:
            writer.writerow([user, f"User {user[1:]}", f"{user}@northwind.example"])
    first = datetime(2024, 11, 15, tzinfo=anchor.tzinfo)
    span = NOW.timestamp() - first.timestamp()
    with (OUT / "matches.csv").open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["id", "program_id", "participants", "started_at", "ended_at"])
        for n in range(1, 241):
            program = rng.choice(PROGRAMS)[0]
            started = first + timedelta(seconds=rng.uniform(0, span))
            group = rng.random() < 0.1
            people = rng.sample(users, 4 if group else 2)
            ended: datetime | None = None
            if rng.random() < 0.6:
                ended = started + timedelta(days=rng.uniform(20, 300))
                if ended > NOW:
                    ended = None
            participants = ";".join(
                [f"{people[0]}:mentor"] + [f"{person}:mentee" for person in people[1:]]
            )
            writer.writerow(
                [
                    f"m{n:03d}",
                    program,
                    participants,
                    started.isoformat(),
                    "" if ended is None else ended.isoformat(),
                ]
            )


if __name__ == "__main__":
    main()
