"""One weighed-mass list for every command (`record qc`, `calibrate flow`): numbers in
mg separated by commas and/or white space; anything else is refused naming --mass-mg."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from doseprint.cli.options import mass_list_option, parse_mass_list


@pytest.mark.parametrize(
    ("text", "masses"),
    [
        ("412.1", (412.1,)),
        ("412.1,409.8", (412.1, 409.8)),
        ("412.1, 409.8 415.0", (412.1, 409.8, 415.0)),
        ("  412.1 ,\t409.8\n415 ", (412.1, 409.8, 415.0)),
        ("412.1,,409.8", (412.1, 409.8)),
        (".5 4.e2 1e3", (0.5, 400.0, 1000.0)),
    ],
)
def test_numbers_separated_by_commas_or_spaces(text: str, masses: tuple[float, ...]) -> None:
    assert parse_mass_list(text) == masses


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no mass"),
        (" , ", "no mass"),
        ("412.1, heavy", "mass 2, 'heavy', is not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("-inf", "not a number"),
        ("1e999", "not a positive finite mass"),
        ("412.1 -3", "mass 2, '-3', is not a positive finite mass"),
        ("0", "not a positive finite mass"),
        ("0.0", "not a positive finite mass"),
        ("1_000", "not a number"),
        ("412;409", "not a number"),
        ("0x10", "not a number"),
    ],
)
def test_anything_else_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_mass_list(text)


@click.command()
@mass_list_option("Masses.")
def echo_masses(masses: tuple[float, ...]) -> None:
    click.echo(repr(masses))


def test_the_option_flattens_repeated_values() -> None:
    result = CliRunner().invoke(echo_masses, ["--mass-mg", "1, 2", "--mass-mg", "3"])
    assert result.exit_code == 0 and result.output.strip() == "(1.0, 2.0, 3.0)"
    assert CliRunner().invoke(echo_masses, []).output.strip() == "()"


def test_a_bad_value_is_a_usage_error_naming_the_option() -> None:
    result = CliRunner().invoke(echo_masses, ["--mass-mg", "1, x"])
    assert result.exit_code == 2
    assert "'--mass-mg'" in result.output and "'x'" in result.output
