"""The numeric options of ``print`` and ``virtual-printer`` are checked before anything
runs: a timeout of ``nan`` never expires (the print spun at full CPU for ever), one of
``-1`` expires at once, and baud 0 on a POSIX terminal means "hang up", not a speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run_cli


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "soon"])
def test_print_refuses_a_timeout_that_is_not_a_positive_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    code, _, err = run_cli(capsys, "print", tmp_path / "job", "--port", "socket://127.0.0.1:9",
                           "--db", tmp_path / "r.sqlite", "--timeout", value)
    assert code == 2, err
    assert "--timeout" in err and "Traceback" not in err
    assert not (tmp_path / "r.sqlite").exists()  # nothing was written


@pytest.mark.parametrize("value", ["0", "-9600", "115200.5", "fast"])
def test_print_refuses_a_baud_that_is_not_a_positive_whole_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    code, _, err = run_cli(capsys, "print", tmp_path / "job", "--port", "socket://127.0.0.1:9",
                           "--db", tmp_path / "r.sqlite", "--baud", value)
    assert code == 2, err
    assert "--baud" in err
    assert not (tmp_path / "r.sqlite").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--busy-s", "nan"), ("--busy-s", "inf"), ("--heat-rate", "nan"),
     ("--extrude-min-temp", "nan"), ("--busy-every", "0")],
)
def test_virtual_printer_refuses_options_that_are_not_numbers(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code, _, err = run_cli(capsys, "virtual-printer", "--tcp", "1", option, value)
    assert code == 2, err
    assert option in err


def test_the_library_refuses_them_too(tmp_path: Path) -> None:
    from doseprint.errors import InputError
    from doseprint.printing import print_job
    from doseprint.records.store import open_store

    with open_store(str(tmp_path / "r.sqlite")) as store:
        for kwargs in ({"answer_timeout_s": float("nan")}, {"answer_timeout_s": 0.0},
                       {"baud": 0}):
            with pytest.raises(InputError, match="is not a"):
                print_job(tmp_path / "no-job", "socket://127.0.0.1:9", store,
                          operator="T. Tech", **kwargs)  # type: ignore[arg-type]
