"""Is the process that started a print still running?

A ``started`` event names the printing process (:func:`process_identity`). A print that
dies -- killed, crashed, a power cut -- leaves its record in ``printing``; the next
:func:`~doseprint.records.store.open_store` on the same host asks :func:`process_alive`
and, when the answer is no, appends ``interrupted``. On Linux the boot id and the
process's start time (from ``/proc``) keep a reboot or a reused pid from being taken for
the same process; elsewhere the pid alone is checked.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doseprint.records.values import JsonDict

__all__ = ["process_alive", "process_identity"]


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) from Linux /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        # The command name (field 2) is in parentheses and may hold spaces or ')'.
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def process_identity() -> JsonDict:
    """Who is printing: this process's pid and host (plus, on Linux, boot and start).

    :meth:`~doseprint.records.store.RecordStore.append` adds it to a ``started`` event's
    data as ``process`` when the caller has not, so a later start can tell whether the
    print is still running.

    Returns
    -------
    dict
        ``{"pid": int, "host": str}``, with ``boot_id`` and ``proc_start`` on Linux so a
        reboot or a reused pid is not taken for the same process.
    """
    pid = os.getpid()
    identity: JsonDict = {"pid": pid, "host": socket.gethostname()}
    boot = _boot_id()
    if boot:
        identity["boot_id"] = boot
    stat = _proc_stat(pid)
    if stat is not None:
        identity["proc_start"] = stat[1]
    return identity


if sys.platform == "win32":  # pragma: no cover - not tested on Windows yet

    def _windows_pid_exists(pid: int) -> bool:
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            # 87 (invalid parameter): no such process; anything else (access denied):
            # it exists.
            return bool(ctypes.get_last_error() != 87)
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return bool(code.value == 259)  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover
        try:
            return _windows_pid_exists(pid)
        except OSError:
            return True
    try:
        # Signal 0 checks that the process exists without touching it.
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError: it exists and belongs to someone else. Other errors: cannot
        # tell, and "alive" is the safe answer (the record stays "printing").
        return True
    return True


def process_alive(identity: Mapping[str, Any]) -> bool | None:
    """Whether the process a ``started`` event names still runs.

    Parameters
    ----------
    identity : mapping
        As made by :func:`process_identity`.

    Returns
    -------
    bool or None
        True or False on the same host; None when it cannot be told (another host, or
        no pid recorded).
    """
    pid = identity.get("pid")
    host = identity.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(host, str):
        return None
    if host != socket.gethostname():
        return None
    boot = identity.get("boot_id")
    current_boot = _boot_id()
    if isinstance(boot, str) and current_boot is not None and boot != current_boot:
        return False  # the machine restarted since (a power cut, a reboot)
    if not _pid_exists(pid):
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state == "Z":
            return False  # killed, waiting for its parent to collect it
        recorded = identity.get("proc_start")
        if isinstance(recorded, int) and recorded != start:
            return False  # the pid now belongs to another process
    return True
