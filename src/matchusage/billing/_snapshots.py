"""Usage snapshots: the frozen, fingerprinted record of who was billed for a period."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from .._model import Match
from .._periods import BillingPeriod
from .._time import from_micros, is_aware, require_aware, to_micros
from ..exceptions import CorruptSnapshotError, InvalidRecordError

_FORMAT = 1


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
            time zones their instants are written in.
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
        digest = hashlib.sha256(self.canonical().encode()).hexdigest()
        object.__setattr__(self, "fingerprint", f"sha256:{digest}")

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
        cls, text: str, *, computed_at: datetime, fingerprint: str | None = None
    ) -> UsageSnapshot:
        """Rebuild a snapshot from [`canonical`][matchusage.billing.UsageSnapshot.canonical] text.

        Instants come back in UTC. With *fingerprint*, the rebuilt snapshot
        must have it.

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
        if fingerprint is not None and snapshot.fingerprint != fingerprint:
            raise CorruptSnapshotError(
                f"Snapshot of {snapshot.organization_id!r} for {snapshot.period}: content has "
                f"fingerprint {snapshot.fingerprint!r}, stored {fingerprint!r}"
            )
        return snapshot
