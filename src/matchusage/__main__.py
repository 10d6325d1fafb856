"""Command line: ``python -m matchusage``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._example import EXAMPLE_NOW, EXAMPLE_ORGANIZATION_ID, example_repository
from ._source import OrganizationMatches
from ._usage import active_users_by_period, current_active_matches


def _demo() -> int:
    repository = example_repository()
    organization = repository.organization(EXAMPLE_ORGANIZATION_ID)
    print(f"{organization.name} at {EXAMPLE_NOW.isoformat()}")
    print("\nCurrent active matches and users per program:")
    for program in repository.programs(organization.id):
        source = OrganizationMatches(repository, organization.id, program.id)
        current = current_active_matches(source, at=EXAMPLE_NOW)
        people = {user for match in current for user in match.participants}
        print(f"  {program.name:<24} {len(current):>4} matches {len(people):>4} users")
    print("\nActive users over the last 6 billing periods:")
    periods = organization.cycle.closed_periods(before=EXAMPLE_NOW, count=6)
    source = OrganizationMatches(repository, organization.id)
    for period, users in active_users_by_period(source, periods).items():
        print(f"  {period.start:%Y-%m-%d} .. {period.end:%Y-%m-%d} {len(users):>5}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit status."""
    parser = argparse.ArgumentParser(prog="matchusage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="figures of the bundled example organization")
    parser.parse_args(argv)
    return _demo()


if __name__ == "__main__":
    sys.exit(main())
