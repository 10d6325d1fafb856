"""The command line with ``--snapshots``: reports and exports that agree with the invoices."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from matchusage import BASIS_COLUMN, OrganizationMatches, UsageReport, usage_report
from matchusage.__main__ import main
from matchusage._cli._example import EXAMPLE_NOW, EXAMPLE_ORGANIZATION_ID, example_repository
from matchusage.sql import SQLSnapshotStore

from ._billed_example import MISTAKE, close_example_periods

REPOSITORY = example_repository()
ORGANIZATION = REPOSITORY.organization(EXAMPLE_ORGANIZATION_ID)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a SQLite snapshot store holding the example's billing history."""
    path = tmp_path_factory.mktemp("billing") / "billing.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    store = SQLSnapshotStore(engine)
    store.create_schema()
    close_example_periods(store)
    engine.dispose()
    return f"sqlite:///{path}"


def run(*argv: str) -> str:
    out = io.StringIO()
    assert 0 == main(list(argv), out=out)
    return out.getvalue()


def expected_report(url: str) -> UsageReport:
    engine = sa.create_engine(url)
    try:
        return usage_report(
            OrganizationMatches(REPOSITORY, ORGANIZATION.id),
            ORGANIZATION.cycle,
            now=EXAMPLE_NOW,
            snapshots=SQLSnapshotStore(engine),
        )
    finally:
        engine.dispose()


def test_report_table_shows_billed_and_live(snapshots: str) -> None:
    report = expected_report(snapshots)
    lines = run("report", "--example", "--snapshots", snapshots).splitlines()
    header = next(line for line in lines if line.strip().startswith("period"))
    assert header.split() == ["period", "billed", "active", "new", "dropped"]
    rows = [line for line in lines if "→" in line and "(" in line and "█" in line]
    assert 6 == len(rows)
    for usage, row in zip(report.periods, rows, strict=True):
        cells = row.split()
        assert [str(usage.billed_count or "-"), str(usage.count)] == cells[3:5]
    assert rows[0].endswith("(not billed yet)")
    assert rows[3].endswith("(as billed)")
    assert rows[5].endswith("(since billed: 0 added, -2 removed)")


def test_report_json_and_csv_carry_the_billing(snapshots: str) -> None:
    report = expected_report(snapshots)
    document = json.loads(run("report", "--example", "--snapshots", snapshots, "--format", "json"))
    october = document["periods"][-1]["billing"]
    assert {
        "status": "billed",
        "billed_users": report.periods[-1].count + 2,
        "added_since_billed": 0,
        "removed_since_billed": 2,
        "difference": -2,
    } == october
    assert {"status": "not billed", "billed_users": None} == {
        key: document["periods"][0]["billing"][key] for key in ("status", "billed_users")
    }
    text = run("report", "--example", "--snapshots", snapshots, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert ["not billed"] * 3 + ["billed"] * 3 == [row["billing:status"] for row in rows]
    assert str(report.periods[-1].billed_count) == rows[-1]["billing:billed_users"]


def test_without_snapshots_the_outputs_are_unchanged(snapshots: str) -> None:
    plain = run("report", "--example", "--format", "json")
    assert "billing" not in plain
    assert "billed" not in run("report", "--example")


def test_export_of_a_billed_period_is_the_billed_users(snapshots: str, tmp_path: Path) -> None:
    argv = ["export", "--example", "--snapshots", snapshots, "--period", "2026-11-01T00:00Z"]
    billed = list(csv.DictReader(io.StringIO(run(*argv))))
    live = list(csv.DictReader(io.StringIO(run(*argv, "--live"))))

    assert {"billed"} == {row[BASIS_COLUMN] for row in billed}
    assert {"live"} == {row[BASIS_COLUMN] for row in live}
    assert MISTAKE == {row["user_id"] for row in billed} - {row["user_id"] for row in live}
    assert len(billed) == len(live) + 2


def test_export_to_a_file_says_which_list_it_is(
    snapshots: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "export.jsonl"
    argv = ["export", "--example", "--snapshots", snapshots, "--format", "json", "-o", str(target)]
    run(*argv)
    assert "(billed users of billed periods)" in capsys.readouterr().err
    bases = {json.loads(line)[BASIS_COLUMN] for line in target.read_text().splitlines()}
    assert {"billed", "live"} == bases
    run(*argv, "--live")
    assert "(live recount)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        pytest.param("not a url", "not a usable database URL", id="bad-url"),
        pytest.param("nosuchdialect://x", "not a usable database URL", id="dialect"),
    ],
)
def test_a_bad_snapshot_url_is_one_line(
    url: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(["report", "--example", "--snapshots", url], out=io.StringIO())
    (line,) = capsys.readouterr().err.splitlines()
    assert words in line


def test_a_store_without_tables_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert 2 == main(["report", "--example", "--snapshots", url], out=io.StringIO())
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("matchusage: error:")


@pytest.fixture(scope="module")
def keyed_snapshots(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite snapshot store of the example's billing history, with keyed fingerprints."""
    path = tmp_path_factory.mktemp("keyed") / "billing.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    store = SQLSnapshotStore(engine, fingerprint_key=b"operator secret")
    store.create_schema()
    close_example_periods(store)
    engine.dispose()
    return f"sqlite:///{path}"


def test_a_keyed_store_is_read_with_the_key_from_the_environment(
    keyed_snapshots: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--example", "--snapshots", keyed_snapshots, "--format", "json"]
    monkeypatch.setenv("BILLING_KEY", "operator secret")
    document = json.loads(run(*argv, "--snapshots-key-env", "BILLING_KEY"))
    assert "billed" == document["periods"][-1]["billing"]["status"]
    # Without the key (or with another), the store's records are refused, in one line.
    assert 2 == main(argv, out=io.StringIO())
    monkeypatch.setenv("BILLING_KEY", "guess")
    assert 2 == main([*argv, "--snapshots-key-env", "BILLING_KEY"], out=io.StringIO())
    monkeypatch.delenv("BILLING_KEY")
    assert 2 == main([*argv, "--snapshots-key-env", "BILLING_KEY"], out=io.StringIO())
    lines = capsys.readouterr().err.splitlines()
    assert 3 == len(lines)
    assert "BILLING_KEY is not set" in lines[-1]


def test_report_html_shows_what_was_billed(
    snapshots: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "usage.html"
    run("report", "--example", "--snapshots", snapshots, "--html", str(target))
    assert f"report page written to {target}" in capsys.readouterr().err
    page = target.read_text(encoding="utf-8")
    report = expected_report(snapshots)
    october = report.periods[-1]
    assert f'<td class="num" data-figure="billed">{october.billed_count}</td>' in page
    assert f'<span data-figure="removed">\u2212{len(MISTAKE)}</span> removed' in page
    assert page.count('data-kind="billed"') == 3
