"""Terminal safety of everything doseprint prints (doseprint.cli.terminal), errors as one
line an item, and ``--json`` errors of any command that has the option."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from doseprint.cli.main import cli
from doseprint.cli.terminal import SafeLogFormatter, json_text, safe_text
from doseprint.errors import EXIT_INPUT, EXIT_RESULT, DoseCheckError, InputError, Problem
from helpers.cli import run_cli as run

ACTS = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def acting(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ACTS]


@pytest.mark.parametrize(("raw", "shown"), [
    ("x\n status       released\x1b[2J", "x\\n status       released\\x1b[2J"),
    ("a\rb\tc\x00d\x7fe", "a\\rb\\tc\\x00d\\x7fe"),
    ("csi\x9b2J nel\x85", "csi\\x9b2J nel\\x85"),
    ("PT-\u202eA3F7", "PT-\\u202eA3F7"),
    ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069", "\\u202a\\u202b\\u202c\\u202d"
     "\\u2066\\u2067\\u2068\\u2069"),
    ("zero\u200bwidth\u200d\ufeff\u00ad", "zero\\u200bwidth\\u200d\\ufeff\\xad"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("bad\udcff", "bad\\udcff"),
    ("Müller é ü 中文 Ωµ → ½", "Müller é ü 中文 Ωµ → ½"),
    ("C:\\path\\n", "C:\\path\\n"),
    (42, "42"),
])
def test_safe_text(raw: object, shown: str) -> None:
    assert safe_text(raw) == shown


@given(st.text())
def test_safe_text_leaves_nothing_that_acts(text: str) -> None:
    shown = safe_text(text)
    assert acting(shown) == []
    if not acting(text):
        assert shown == text
    assert json.loads(json_text(text)) == text
    assert acting(json_text(text).replace("\n", "")) == []


def test_log_lines_are_escaped() -> None:
    record = logging.LogRecord("doseprint", logging.WARNING, __file__, 1,
                               "ok for line %d, which awaits none: %s", (3, "ok\x1b[2J\nfake"),
                               None)
    assert SafeLogFormatter("%(message)s").format(record) == (
        "ok for line 3, which awaits none: ok\\x1b[2J\\nfake")


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exception]]:
    """A command ``boom`` that raises the error the test puts in the list."""
    raised: list[Exception] = []

    @click.command("boom")
    @click.option("--json", "as_json", is_flag=True)
    def boom_cmd(as_json: bool) -> None:
        raise raised[0]

    monkeypatch.setitem(cli.commands, "boom", boom_cmd)
    yield raised


def test_an_error_shows_each_item_on_a_line_of_its_own(
    boom: list[Exception], capsys: pytest.CaptureFixture[str]
) -> None:
    """doseprint's own line breaks stay; one inside an item is shown as \\n."""
    boom.append(DoseCheckError("job-1/job.gcode: dose check failed:",
                               details=["tablet 0: api\nerror: fake\x1b[2J", "tablet 1: ok"],
                               hint="compile\nagain"))
    code, out, err = run(capsys, "boom")
    assert code == EXIT_RESULT
    assert out == ""
    assert err.splitlines() == ["error: job-1/job.gcode: dose check failed:",
                                "  tablet 0: api\\nerror: fake\\x1b[2J",
                                "  tablet 1: ok",
                                "hint: compile\\nagain"]
    assert boom[0].args[0] == ("job-1/job.gcode: dose check failed:\n"
                               "  tablet 0: api\nerror: fake\x1b[2J\n  tablet 1: ok")


def test_input_problems_one_a_line(
    boom: list[Exception], capsys: pytest.CaptureFixture[str]
) -> None:
    boom.append(InputError([Problem("rx\n.toml", "id", "is 'RX\x1b[2J'"),
                            Problem("rx.toml", "patient", "is empty")]))
    code, _, err = run(capsys, "boom")
    assert code == EXIT_INPUT
    assert err.splitlines() == ["error: 2 problems:",
                                "  rx\\n.toml: id: is 'RX\\x1b[2J'",
                                "  rx.toml: patient: is empty",
                                "nothing was written."]


def test_a_command_without_json_option_reports_on_stderr_only(
    boom: list[Exception], capsys: pytest.CaptureFixture[str]
) -> None:
    """``boom``'s own --json flag is not doseprint's json_option: no JSON error."""
    boom.append(DoseCheckError("x"))
    code, out, _ = run(capsys, "boom", "--json")
    assert code == EXIT_RESULT
    assert out == ""


def test_usage_errors_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """click puts an unexpected argument into its message as it was typed."""
    typed = "extra\x1b[2J\nError: fake"
    code, out, err = run(capsys, "record", "list", typed)
    assert code == EXIT_INPUT
    assert out == ""
    assert acting(err.replace("\n", "")) == []
    assert "Error: Got unexpected extra argument (extra\\x1b[2J\\nError: fake)" in err
    assert not any(line == "Error: fake" for line in err.splitlines())
    code, out, err = run(capsys, "record", "list", typed, "--json")
    assert code == EXIT_INPUT
    error = json.loads(out)["error"]
    assert error["kind"] == "UsageError"
    assert error["message"] == f"Got unexpected extra argument ({typed})"
    assert error["hint"] == "Try 'doseprint record list --help' for help."
    code, out, _ = run(capsys, "record", "list", "--jsn", "--json")
    assert code == EXIT_INPUT
    assert json.loads(out)["error"]["kind"] == "NoSuchOption"


def test_json_errors_of_other_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """The same option on the library commands: an unknown id, as JSON, exit 2."""
    for args in (("formulation", "show", "no-such\x1b[2J"), ("printer", "show", "nope")):
        code, out, err = run(capsys, *args, "--json")
        assert code == EXIT_INPUT, err
        document = json.loads(out)
        assert document["ok"] is False and document["exit_code"] == EXIT_INPUT
        assert acting(err.replace("\n", "")) == []
    code, out, _ = run(capsys, "printer", "show", "--json")
    assert code == EXIT_INPUT
    assert json.loads(out)["error"]["key"] == "PRINTER_ID"


def test_json_is_forgotten_between_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "printer", "list", "--json")
    assert code == 0
    json.loads(out)
    code, out, err = run(capsys, "printer", "show", "nope")
    assert code == EXIT_INPUT
    assert out == ""
    assert err.startswith("error: ")
