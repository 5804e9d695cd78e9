"""`doseprint record qc` and `record investigate` through the command line (click's
CliRunner around :func:`doseprint.cli.main`, which maps errors to exit codes), on SQLite
and PostgreSQL: the rule that fits the batch, implausible masses refused with nothing
written, targets before weighing, exit 1 on a failed QC, and a failed QC that stays final
unless investigated."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from doseprint.cli import main
from doseprint.records.store import open_store
from doseprint.records.values import Event

from .helpers import Backend
from .qc_helpers import full_content

DOSES = (125.0, 100.0, 75.0, 125.0)
"""Four tablets, designed 416.7, 333.3, 250.0 and 416.7 mg (limit 5 %)."""
GOOD = "416.0, 333.0 250.5,417.0"
ONE_BEYOND = "416.0, 333.0, 250.5, 450.0"
"""Tablet 3 is 8 % over its design, 5.9 % over the batch: beyond 5 %, within twice it and
within the dose limits. Passed under "at most 2 of 20"; fails when every unit must be
within the limit."""


@dataclass
class Run:
    code: int
    out: str
    err: str


def doseprint(*args: str) -> Run:
    """``doseprint ARGS`` in CliRunner's isolation, through main() and its exit codes."""
    runner = CliRunner()
    code = 0
    with runner.isolation() as (stdout, stderr, _):
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    assert "Traceback" not in out + err
    return Run(code, out, err)


@pytest.fixture
def printed_batch(backend: Backend) -> tuple[str, str]:
    """(store URL, record id) of a completed print of four tablets with designed masses."""
    with open_store(backend.url) as store:
        record_id = store.create(full_content(DOSES), actor="Ana Operator")
        store.append(record_id, "started", {}, "Ana Operator")
        store.append(record_id, "completed", {"last_acked": 10}, "doseprint")
    return backend.url, record_id


def events(url: str, record_id: str) -> tuple[Event, ...]:
    with open_store(url) as store:
        return store.get(record_id).events


def assert_refused(url: str, record_id: str, message: str, *args: str) -> None:
    """``doseprint ARGS --db URL`` exits 2 with ``message`` on stderr and writes nothing."""
    before = events(url, record_id)
    run = doseprint(*args, "--db", url)
    assert run.code == 2 and message in run.err, run.err
    assert events(url, record_id) == before


def qc(url: str, record_id: str, masses: str, *more: str) -> Run:
    return doseprint("record", "qc", record_id, "--mass-mg", masses, "--by", "T. Tech",
                     "--db", url, *more)


def test_a_passing_qc_says_its_rule(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    run = qc(url, rid, GOOD)
    assert run.code == 0, run.err
    assert "QC PASSED" in run.out and "every-unit-within-limit" in run.out
    (event,) = [e for e in events(url, rid) if e.kind == "qc"]
    assert event.data["rule"] == "every-unit-within-limit"
    assert event.data["masses_mg"] == [416.0, 333.0, 250.5, 417.0]


def test_a_failed_qc_is_recorded_and_exits_1(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    run = qc(url, rid, ONE_BEYOND)
    assert run.code == 1
    assert "QC FAILED" in run.out and "tablets beyond ±5 %: 3" in run.out
    assert "QC FAILED" in run.err and "investigate" in run.err
    (event,) = [e for e in events(url, rid) if e.kind == "qc"]
    assert event.data["passed"] is False
    assert event.data["uniformity"]["beyond_limit"] == [3]
    refused = doseprint("record", "release", rid, "--by", "B. Pharmacist", "--meaning", "QA",
                        "--db", url)
    assert refused.code == 1 and "failed QC" in refused.err


def test_json_output_is_kept_on_a_failed_qc(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    run = qc(url, rid, ONE_BEYOND, "--json")
    assert run.code == 1
    data = json.loads(run.out)
    assert data["record"] == rid and data["passed"] is False
    assert data["rule"] == "every-unit-within-limit"
    assert data["seq"] == events(url, rid)[-1].seq


def test_a_failed_qc_is_final_unless_investigated(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    assert qc(url, rid, ONE_BEYOND).code == 1
    failed_seq = events(url, rid)[-1].seq
    # Weighing again "until it passes" is refused, and nothing is written.
    assert_refused(url, rid, "failed QC is final", "record", "qc", rid, "--mass-mg", GOOD,
                   "--by", "T. Tech")
    assert "nothing was written" in qc(url, rid, GOOD).err

    opened = doseprint("record", "investigate", rid[:8], "--by", "Q. Person", "--reason",
                       "tablet 3 weighed with a support attached", "--db", url)
    assert opened.code == 0, opened.err
    assert f"failed QC of event {failed_seq}" in opened.out
    passed = qc(url, rid, GOOD)
    assert passed.code == 0, passed.err
    # Still unreleasable while the investigation is open.
    refused = doseprint("record", "release", rid, "--by", "B. Pharmacist", "--meaning", "QA",
                        "--db", url)
    assert refused.code == 1 and "open investigation" in refused.err
    closed = doseprint("record", "investigate", rid, "--close", "--by", "Q. Person",
                       "--outcome", "support removed; re-weighed, passed", "--db", url)
    assert closed.code == 0, closed.err
    assert "may be released" in closed.out
    kinds = [e.kind for e in events(url, rid)]
    assert kinds[-4:] == ["qc", "investigation_opened", "qc", "investigation_closed"]
    shown = doseprint("record", "show", rid, "--db", url)
    assert shown.code == 0
    assert "investigation_opened" in shown.out and "support attached" in shown.out
    assert "support removed" in shown.out and "FAILED (every-unit-within-limit)" in shown.out
    assert "latest passed" in shown.out
    assert doseprint("record", "verify", "--db", url).code == 0
    released = doseprint("record", "release", rid, "--by", "B. Pharmacist", "--meaning",
                         "QA release", "--db", url)
    assert released.code == 0, released.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "Q", "--reason", "why"), "no QC to investigate"),
        (("--by", "Q", "--close", "--outcome", "found"), "no investigation is open"),
        (("--by", "Q"), "--reason"),
        (("--by", "Q", "--close"), "--outcome"),
        (("--by", "Q", "--close", "--outcome", "o", "--reason", "r"), "--outcome"),
        (("--by", " ", "--reason", "why"), "--by"),
    ],
)
def test_investigations_out_of_turn_or_incomplete_exit_2(
    printed_batch: tuple[str, str], args: tuple[str, ...], message: str
) -> None:
    url, rid = printed_batch
    assert_refused(url, rid, message, "record", "investigate", rid, *args)


@pytest.mark.parametrize(
    ("masses", "message"),
    [
        ("0.416, 0.333, 0.250, 0.417", "--mass-mg[0]"),  # typed in grams
        ("416.0, 333.0, 250.5, 4170", "--mass-mg[3]"),    # a decimal point slipped
        ("416.0, 333.0, 250.5", "4 tablets"),              # one missing
        ("416.0, 333.0, 250.5, 417.0, 416.0", "4 tablets"),
        ("416.0, 333.0, nan, 417.0", "--mass-mg"),
        ("416.0, inf, 250.5, 417.0", "--mass-mg"),
        ("416.0, 333.0, -250.5, 417.0", "--mass-mg"),
        ("416.0, 0, 250.5, 417.0", "--mass-mg"),
        ("416.0, heavy, 250.5, 417.0", "--mass-mg"),
        (" , ", "--mass-mg"),
    ],
)
def test_implausible_or_bad_masses_exit_2_and_write_nothing(
    printed_batch: tuple[str, str], masses: str, message: str
) -> None:
    url, rid = printed_batch
    assert_refused(url, rid, message, "record", "qc", rid, "--mass-mg", masses, "--by", "T")


def test_grams_are_refused_with_the_allowed_range(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    run = qc(url, rid, "0.416, 0.333, 0.250, 0.417")
    assert "208.3-833.3 mg" in run.err and "grams" in run.err


@pytest.mark.parametrize(
    "masses",
    [("416.0,333.0,250.5,417.0",), ("416.0 333.0 250.5 417.0",), ("416.0, 333.0\t250.5 ,417",),
     ("416.0", "333.0, 250.5", "417.0")],
)
def test_one_mass_list_syntax(printed_batch: tuple[str, str], masses: tuple[str, ...]) -> None:
    url, rid = printed_batch
    repeated = [arg for mass in masses for arg in ("--mass-mg", mass)]
    run = doseprint("record", "qc", rid, *repeated, "--by", "T. Tech", "--db", url)
    assert run.code == 0, run.err
    assert events(url, rid)[-1].data["masses_mg"] == [416.0, 333.0, 250.5, 417.0]


def test_targets_before_weighing_write_nothing(printed_batch: tuple[str, str]) -> None:
    url, rid = printed_batch
    before = events(url, rid)
    run = doseprint("record", "qc", rid, "--targets", "--db", url)
    assert run.code == 0, run.err
    assert "every-unit-within-limit" in run.out
    assert "416.7" in run.out and "395.8-437.5" in run.out  # target ± 5 %
    data = json.loads(doseprint("record", "qc", rid, "--targets", "--json", "--db", url).out)
    assert [row["designed_mg"] for row in data["tablets"]] == [416.7, 333.3, 250.0, 416.7]
    assert data["tablets"][0]["window_mg"] == [395.8, 437.5]
    assert data["limit_pct"] == 5.0 and data["new_qc_refused"] is False
    assert events(url, rid) == before
    assert qc(url, rid, ONE_BEYOND).code == 1
    data = json.loads(doseprint("record", "qc", rid, "--targets", "--json", "--db", url).out)
    assert data["new_qc_refused"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--targets"),
        (("--by", "T. Tech"), "--mass-mg"),
        (("--mass-mg", GOOD), "--by"),
        (("--targets", "--mass-mg", GOOD), "--targets"),
    ],
)
def test_qc_usage_errors_exit_2(
    printed_batch: tuple[str, str], args: tuple[str, ...], message: str
) -> None:
    url, rid = printed_batch
    assert_refused(url, rid, message, "record", "qc", rid, *args)
