"""Running ``doseprint`` in the test's own process, as a user would on the command line."""

from __future__ import annotations

import pytest

from doseprint.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``doseprint ARGS`` through :func:`doseprint.cli.main`: (exit code, stdout, stderr)
    of this call alone (anything captured before is dropped)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = done.value.code
    assert isinstance(code, int)
    return code, out, err
