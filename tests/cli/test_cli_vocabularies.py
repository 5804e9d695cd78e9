"""Every choice the command line offers is a vocabulary of typed.py, not a copy of one."""

from __future__ import annotations

from collections.abc import Iterator

import click

from doseprint import typed
from doseprint.cli import cli


def _commands(group: click.Group) -> Iterator[click.Command]:
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from _commands(command)


def test_every_click_choice_is_a_typed_vocabulary() -> None:
    vocabularies = [value for name, value in vars(typed).items()
                    if name.isupper() and isinstance(value, tuple)]
    choices = [(command.name, param.name, tuple(param.type.choices))
               for command in _commands(cli) for param in command.params
               if isinstance(param.type, click.Choice)]
    assert choices, "the command line offers no choice: nothing was checked"
    for command, param, offered in choices:
        assert any(offered == v for v in vocabularies), (command, param, offered)
        assert any(offered is v for v in vocabularies), (
            f"{command} --{param}: a copy of a typed.py vocabulary; pass it itself")
