"""Usage snapshots: the frozen, fingerprinted record of who was billed for a period."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from .._model import Match
from .._periods import BillingPeriod
from .._time import from_micros, is_aware, require_aware, to_micros
from ..exceptions import CorruptSnapshotError, InvalidRecordError, SnapshotConflictError
from ._values import ReportedUsage

_FORMAT = 1
Stored = TypeVar("Stored", "UsageSnapshot", ReportedUsage)


def fingerprint(text: str, key: bytes | None = None) -> str:
    """The fingerprint of a record's canonical *text*: ``"sha256:<hex>"``, or with *key*
    ``"hmac-sha256:<hex>"``, which only a holder of the key can compute.

    An unkeyed fingerprint detects accidental changes; anyone able to edit a
    record can recompute it. A keyed one (the operator's secret, kept away from
    the database) also detects a record edited together with its fingerprint.
    """
    if key is None:
        return f"sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    if not isinstance(key, bytes) or not key:
        raise InvalidRecordError("fingerprint", "key", "<redacted>", "non-empty bytes")
    return f"hmac-sha256:{hmac.new(key, text.encode(), hashlib.sha256).hexdigest()}"


def check_fingerprint(what: str, text: str, stored: str, key: bytes | None) -> None:
    """Raise `CorruptSnapshotError` unless *stored* is the fingerprint of *text* under *key*.

    With a key, an unkeyed fingerprint is refused too: it could have been
    written by anyone.
    """
    computed = fingerprint(text, key)
    if hmac.compare_digest(computed, stored):
        return
    if key is None:
        raise CorruptSnapshotError(
            f"{what}: content has fingerprint {computed!r}, stored {stored!r}; "
            "the record was altered in storage"
        )
    # The expected HMAC is not shown: it would let whoever reads the error forge it.
    raise CorruptSnapshotError(
        f"{what}: stored {stored!r} is not the HMAC-SHA256 of its content under the "
        "store's key; the record was altered in storage, or written without the key "
        "or with another one"
    )


def report_canonical(report: ReportedUsage) -> str:
    """The canonical JSON of a report record: what its fingerprint is computed over."""
    return json.dumps(
        [
            _FORMAT,
            report.organization_id,
            [to_micros(report.period.start), to_micros(report.period.end)],
            report.quantity,
            report.idempotency_key,
            report.reference,
            to_micros(report.reported_at),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _listed(users: frozenset[str]) -> str:
    shown = ", ".join(map(repr, sorted(users)[:10]))
    return shown + (f" and {len(users) - 10} more" if len(users) > 10 else "")


def _snapshot_differences(stored: UsageSnapshot, attempted: UsageSnapshot) -> tuple[str, ...]:
    before, after = stored.users, attempted.users
    differences = []
    if after - before:
        differences.append(f"users only in the new snapshot: {_listed(after - before)}")
    if before - after:
        differences.append(f"users only in the stored snapshot: {_listed(before - after)}")
    changed = frozenset(u for u in before & after if stored.evidence[u] != attempted.evidence[u])
    if changed:
        differences.append(f"different matches for: {_listed(changed)}")
    return tuple(differences)


def _report_differences(stored: ReportedUsage, attempted: ReportedUsage) -> tuple[str, ...]:
    fields = ("quantity", "idempotency_key", "reference", "reported_at")
    return tuple(
        f"{field} {getattr(attempted, field)!r} instead of {getattr(stored, field)!r}"
        for field in fields
        if getattr(stored, field) != getattr(attempted, field)
    )


def require_same(stored: Stored, attempted: Stored) -> Stored:
    """Return *stored* if *attempted* has the same content, else raise `SnapshotConflictError`.

    The rule of every snapshot store, for snapshots and for report records:
    written once, the same write again is a no-op, a different one is refused.
    (A snapshot's ``computed_at`` is not content: the same users and evidence
    computed twice are the same snapshot.)
    """
    if stored == attempted:
        return stored
    if isinstance(stored, UsageSnapshot) and isinstance(attempted, UsageSnapshot):
        differences = _snapshot_differences(stored, attempted)
    else:
        assert isinstance(stored, ReportedUsage)
        assert isinstance(attempted, ReportedUsage)
        differences = _report_differences(stored, attempted)
    raise SnapshotConflictError(
        stored.organization_id, stored.period, stored, attempted, differences
    )


@attrs.frozen
class MatchEvidence:
    """One match that made a user active in a snapshot's period.

    Attributes:
        match_id: The match's id.
        program_id: The program it belongs to.
        started_at: When it started.
        ended_at: When it ended, or ``None`` if it was ongoing when the snapshot was taken.
    """

    match_id: str
    program_id: str
    started_at: datetime
    ended_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        record = f"MatchEvidence {self.match_id!r}"
        for field in ("match_id", "program_id"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise InvalidRecordError(record, field, value, "a non-empty string")
        require_aware(self.started_at, record, "started_at", InvalidRecordError)
        if self.ended_at is not None:
            require_aware(self.ended_at, record, "ended_at", InvalidRecordError)

    @classmethod
    def of(cls, match: Match) -> MatchEvidence:
        """The evidence a [`Match`][matchusage.Match] gives."""
        return cls(match.id, match.program_id, match.started_at, match.ended_at)

    def _canonical(self) -> list[Any]:
        end = None if self.ended_at is None else to_micros(self.ended_at)
        return [self.match_id, self.program_id, to_micros(self.started_at), end]


def _sort_key(evidence: MatchEvidence) -> tuple[int, str]:
    return (to_micros(evidence.started_at), evidence.match_id)


def _freeze_evidence(value: object) -> Mapping[str, tuple[MatchEvidence, ...]]:
    if not isinstance(value, Mapping):
        raise InvalidRecordError(
            "UsageSnapshot", "evidence", value, "a mapping of user id to MatchEvidence"
        )
    frozen: dict[str, tuple[MatchEvidence, ...]] = {}
    for user_id in sorted(value, key=str):
        items = value[user_id]
        items = (items,) if isinstance(items, MatchEvidence) else tuple(items)
        if not isinstance(user_id, str) or not user_id:
            raise InvalidRecordError("UsageSnapshot", "evidence", user_id, "non-empty user ids")
        if not items or not all(isinstance(item, MatchEvidence) for item in items):
            raise InvalidRecordError(
                "UsageSnapshot",
                f"evidence[{user_id!r}]",
                items,
                "at least one MatchEvidence (the matches that made the user active)",
            )
        frozen[user_id] = tuple(sorted(items, key=_sort_key))
    return MappingProxyType(frozen)


@attrs.frozen
class UsageSnapshot:
    """The immutable record of a closed period: who was active, why, and its fingerprint.

    A snapshot is taken once when a period is closed and never rewritten, so
    the invoice quantity stays explainable even if old matches are edited
    later (see [`reconcile`][matchusage.billing.reconcile]).

    Attributes:
        organization_id: The organization.
        period: The billing period.
        evidence: For each active user id, the matches that made them active.
        computed_at: When the usage was computed.
        fingerprint: ``"sha256:<hex>"`` over a canonical serialisation of the
            organization, the period and the evidence (not *computed_at*): two
            snapshots with the same content have the same fingerprint, whatever
            time zones their instants are written in. Stores given a key keep
            a keyed fingerprint instead (see
            [`fingerprint`][matchusage.billing.fingerprint]).
    """

    organization_id: str
    period: BillingPeriod
    evidence: Mapping[str, tuple[MatchEvidence, ...]] = attrs.field(
        converter=_freeze_evidence, hash=False, repr=lambda e: f"<{len(e)} users>"
    )
    computed_at: datetime = attrs.field(eq=False)
    fingerprint: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        record = "UsageSnapshot"
        if not isinstance(self.organization_id, str) or not self.organization_id:
            raise InvalidRecordError(
                record, "organization_id", self.organization_id, "a non-empty string"
            )
        if not isinstance(self.period, BillingPeriod):
            raise InvalidRecordError(record, "period", self.period, "a BillingPeriod")
        if not is_aware(self.computed_at):
            raise InvalidRecordError(
                record, "computed_at", self.computed_at, "a timezone-aware datetime"
            )
        object.__setattr__(self, "fingerprint", fingerprint(self.canonical()))

    @property
    def user_ids(self) -> tuple[str, ...]:
        """The ids of the active users, sorted."""
        return tuple(self.evidence)

    @property
    def users(self) -> frozenset[str]:
        """The ids of the active users, as a set."""
        return frozenset(self.evidence)

    @property
    def count(self) -> int:
        """The number of active users: the quantity billed."""
        return len(self.evidence)

    def canonical(self) -> str:
        """The canonical JSON serialisation the fingerprint is computed over.

        Instants are UTC microseconds, keys are sorted, and users and their
        evidence are in a fixed order, so equal content gives equal text.
        """
        return json.dumps(
            {
                "format": _FORMAT,
                "organization_id": self.organization_id,
                "period": [to_micros(self.period.start), to_micros(self.period.end)],
                "users": {
                    user: [item._canonical() for item in items]
                    for user, items in self.evidence.items()
                },
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_canonical(
        cls,
        text: str,
        *,
        computed_at: datetime,
        fingerprint: str | None = None,
        key: bytes | None = None,
    ) -> UsageSnapshot:
        """Rebuild a snapshot from [`canonical`][matchusage.billing.UsageSnapshot.canonical] text.

        Instants come back in UTC. With *fingerprint*, the rebuilt snapshot
        must have it: its SHA-256, or with *key* its HMAC-SHA256 under the key
        (see [`fingerprint`][matchusage.billing.fingerprint]).

        Raises:
            matchusage.exceptions.CorruptSnapshotError: The text is not a
                canonical snapshot, or its fingerprint differs.
        """
        try:
            data = json.loads(text)
            if data["format"] != _FORMAT:
                raise ValueError(f"unknown format {data['format']!r}")
            start, end = data["period"]
            snapshot = cls(
                organization_id=data["organization_id"],
                period=BillingPeriod(from_micros(start), from_micros(end)),
                evidence={
                    user: [
                        MatchEvidence(
                            match_id,
                            program_id,
                            from_micros(started),
                            None if ended is None else from_micros(ended),
                        )
                        for match_id, program_id, started, ended in items
                    ]
                    for user, items in data["users"].items()
                },
                computed_at=computed_at,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptSnapshotError(f"not a canonical usage snapshot: {error}") from error
        if fingerprint is not None:
            what = f"Snapshot of {snapshot.organization_id!r} for {snapshot.period}"
            check_fingerprint(what, snapshot.canonical(), fingerprint, key)
        return snapshot
