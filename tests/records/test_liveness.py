"""Whether the process that started a print still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from doseprint.records.liveness import process_alive, process_identity

from .helpers import dead_pid


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_reused_pid_and_reboot_count_as_dead() -> None:
    mine = process_identity()
    assert process_alive(mine) is True
    assert process_alive({**mine, "proc_start": mine["proc_start"] + 1}) is False
    assert process_alive({**mine, "boot_id": "another-boot"}) is False
    assert process_alive({"pid": mine["pid"]}) is None
    assert process_alive({**mine, "pid": dead_pid()}) is False
