"""Usage snapshots: content, fingerprint and canonical form."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchusage import BillingPeriod
from matchusage.billing import MatchEvidence, UsageSnapshot, fingerprint
from matchusage.exceptions import CorruptSnapshotError, InvalidRecordError
from matchusage.testing import strategies as mst

UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")
JANUARY = BillingPeriod(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
AT = datetime(2024, 2, 2, tzinfo=UTC)


def evidence(match_id: str = "m1", hours: int = 0, zone: object = UTC) -> MatchEvidence:
    start = (datetime(2024, 1, 5, tzinfo=UTC) + timedelta(hours=hours)).astimezone(zone)  # type: ignore[arg-type]
    return MatchEvidence(match_id, "p1", start, None)


def snapshot(users: dict[str, list[MatchEvidence]], **changes: object) -> UsageSnapshot:
    arguments: dict[str, object] = {
        "organization_id": "acme",
        "period": JANUARY,
        "evidence": users,
        "computed_at": AT,
    }
    arguments.update(changes)
    return UsageSnapshot(**arguments)  # type: ignore[arg-type]


def test_a_snapshot_and_its_evidence_are_immutable() -> None:
    frozen = snapshot({"ann": [evidence()]})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        frozen.evidence = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        frozen.evidence["bob"] = ()  # type: ignore[index]


def test_users_and_count() -> None:
    taken = snapshot({"bob": [evidence()], "ann": [evidence()]})
    assert (("ann", "bob"), 2) == (taken.user_ids, taken.count)


def test_fingerprint_ignores_zones_order_and_computation_time() -> None:
    first = snapshot({"ann": [evidence("m1", 0), evidence("m2", 5)]})
    second = snapshot(
        {"ann": [evidence("m2", 5, TOKYO), evidence("m1", 0, TOKYO)]},
        period=BillingPeriod(JANUARY.start.astimezone(TOKYO), JANUARY.end.astimezone(TOKYO)),
        computed_at=AT + timedelta(days=3),
    )
    assert first.fingerprint == second.fingerprint
    assert first == second


@pytest.mark.parametrize(
    "changes",
    [
        {"evidence": {"ann": [evidence()], "bob": [evidence()]}},
        {"evidence": {"ann": [evidence("m9")]}},
        {"evidence": {"ann": [evidence(hours=1)]}},
        {"organization_id": "globex"},
        {"period": BillingPeriod(JANUARY.start, JANUARY.end + timedelta(microseconds=1))},
    ],
    ids=["another-user", "another-match", "another-start", "another-organization", "period"],
)
def test_fingerprint_changes_with_content(changes: dict[str, object]) -> None:
    base = snapshot({"ann": [evidence()]})
    assert base.fingerprint != snapshot({"ann": [evidence()]}, **changes).fingerprint


def test_fingerprint_format() -> None:
    fingerprint = snapshot({}).fingerprint
    assert fingerprint.startswith("sha256:")
    assert 64 == len(fingerprint.removeprefix("sha256:"))


@pytest.mark.parametrize(
    ("users", "field"),
    [
        ({"ann": []}, "evidence['ann']"),
        ({"ann": ["m1"]}, "evidence['ann']"),
        ({"": [evidence()]}, "evidence"),
        ("ann", "evidence"),
    ],
    ids=["no-evidence", "not-evidence", "empty-user-id", "not-a-mapping"],
)
def test_every_user_needs_evidence(users: object, field: str) -> None:
    with pytest.raises(InvalidRecordError, match=re.escape(f"{field!r} must be")):
        snapshot(users)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"computed_at": datetime(2024, 2, 2)}, "computed_at"),
        ({"organization_id": ""}, "organization_id"),
        ({"period": "2024-01"}, "period"),
    ],
    ids=["naive", "organization", "period"],
)
def test_bad_snapshots_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRecordError, match=f"'{field}' must be"):
        snapshot({}, **changes)


def test_naive_evidence_is_refused() -> None:
    with pytest.raises(InvalidRecordError, match="MatchEvidence 'm1': 'started_at'"):
        MatchEvidence("m1", "p1", datetime(2024, 1, 1))


@given(mst.match_lists(), mst.billing_periods())
def test_canonical_round_trip(matches: list[object], period: BillingPeriod) -> None:
    from matchusage._sweep import Sweep

    sweep = Sweep(matches, [period])  # type: ignore[arg-type]
    users = {
        user: [MatchEvidence.of(m) for m in sweep.evidence(user, period)]
        for user in sweep.users(period)
    }
    taken = snapshot(users, period=period)
    again = UsageSnapshot.from_canonical(
        taken.canonical(), computed_at=AT, fingerprint=taken.fingerprint
    )
    assert taken == again
    assert sorted(sweep.users(period)) == list(again.user_ids)


@given(st.text(max_size=30))
def test_garbage_is_never_a_snapshot(text: str) -> None:
    with pytest.raises(CorruptSnapshotError):
        UsageSnapshot.from_canonical(text, computed_at=AT)


def test_a_fingerprint_mismatch_is_corruption() -> None:
    taken = snapshot({"ann": [evidence()]})
    with pytest.raises(CorruptSnapshotError, match="stored 'sha256:00'"):
        UsageSnapshot.from_canonical(taken.canonical(), computed_at=AT, fingerprint="sha256:00")


def test_keyed_fingerprints_need_the_key() -> None:
    text = snapshot({"ann": [evidence()]}).canonical()
    keyed = fingerprint(text, b"k")
    assert keyed.startswith("hmac-sha256:")
    assert keyed != fingerprint(text, b"other")
    assert fingerprint(text).startswith("sha256:")
    for key in (b"", "text"):
        with pytest.raises(InvalidRecordError, match="'key' must be non-empty bytes"):
            fingerprint(text, key)  # type: ignore[arg-type]
