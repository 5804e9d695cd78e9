"""doseprint errors: one hierarchy, and the one place that maps it to exit codes.

::

    DoseprintError                    base; ``.hint`` tells the user what to do
    ├── InputError                    exit 2: a file or option the user gave is invalid
    │   ├── InfeasibleDesignError     no supported design reaches the release target
    │   ├── TemplateRenderError       a printer template does not render
    │   ├── JobIntegrityError         a job folder no longer matches its job.json hashes
    │   │   └── JobSealError          its job.seal is missing, broken or by an untrusted key
    │   ├── SignInError               (records.people) user id and password do not sign in
    │   └── PermissionRefusedError    (records.people) the site policy does not allow the act
    ├── ResultError                   exit 1: the work ran and its result is a failure
    │   ├── GeometryError             a mesh is not watertight or a boolean failed
    │   ├── ReleaseModelError         the release model did not converge
    │   ├── SlicingError              a tablet cannot be sliced or its flow trimmed
    │   ├── DoseCheckError            the G-code dose misses the prescription
    │   ├── PrintFailedError          the print stopped: firmware error, lost port, resends
    │   │   ├── PrinterHaltedError    the firmware reported an error or halted
    │   │   ├── PrinterTimeoutError   the firmware stopped answering
    │   │   ├── ResendLimitError      too many resends of one line
    │   │   ├── LineLostError         a line or its ok was lost where resending is unsafe
    │   │   ├── FirmwareRefusedError  wrong firmware, or it lacks a command the job uses
    │   │   └── PrintAbortedError     the operator stopped the print
    │   ├── RecordChainError          a record's hash chain does not verify
    │   └── RecordStateError          the record's status does not allow this step
    └── EnvironmentFault              exit 3: port, database or disk
        ├── PortOpenError             the serial port or URL cannot be opened
        ├── RecordStoreError          the record store cannot be reached or written
        └── DiskError                 a file cannot be written

Domain errors do not subclass ``ValueError``: callers catch ``DoseprintError``.
Anything that is not a ``DoseprintError`` is a bug and exits 70 (EX_SOFTWARE) with a
traceback only under ``--debug``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "EXIT_BUG",
    "EXIT_ENVIRONMENT",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_RESULT",
    "DiskError",
    "DoseCheckError",
    "DoseprintError",
    "EnvironmentFault",
    "FirmwareRefusedError",
    "GeometryError",
    "InfeasibleDesignError",
    "InputError",
    "JobIntegrityError",
    "JobSealError",
    "LineLostError",
    "PortOpenError",
    "PrintAbortedError",
    "PrintFailedError",
    "PrinterHaltedError",
    "PrinterTimeoutError",
    "Problem",
    "RecordChainError",
    "RecordStateError",
    "RecordStoreError",
    "ReleaseModelError",
    "ResendLimitError",
    "ResultError",
    "SlicingError",
    "TemplateRenderError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_RESULT = 1
EXIT_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_BUG = 70


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where (file and key) and what.

    ``key`` is written the way a user finds it in the file, e.g. ``actives[1].dose_mg``
    (0-based, as in job.json) or ``dispense.schedule[0].doses_mg[3]``.
    """

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class DoseprintError(Exception):
    """Base of every error doseprint raises on purpose.

    A message of several items (every dose that misses, every record that does not
    verify) is given as its first line and ``details``, one item each: ``message`` is
    then the first line followed by each item on a line of its own, indented by two
    spaces, and the command line shows each item as one line whatever it holds
    (:mod:`doseprint.cli.terminal`).
    """

    exit_code = EXIT_RESULT

    def __init__(
        self, message: str, *, hint: str | None = None, details: Iterable[str] = ()
    ) -> None:
        self.summary = message
        self.details: tuple[str, ...] = tuple(details)
        message += "".join(f"\n  {item}" for item in self.details)
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(DoseprintError):
    """A prescription, formulation, printer profile, mesh, job or option is invalid.

    Carries every problem found (one message each), so a pharmacist fixes a file once.
    """

    exit_code = EXIT_INPUT
    after_note = "nothing was written."
    """What the command line says after the problems."""

    def __init__(
        self,
        problems: Iterable[Problem] | str,
        *,
        file: str = "",
        key: str = "",
        hint: str | None = None,
    ) -> None:
        if isinstance(problems, str):
            problems = [Problem(file, key, problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems), hint=hint)


class InfeasibleDesignError(InputError):
    """No supported design reaches a release target; the message gives the closest one."""


class TemplateRenderError(InputError):
    """A printer profile's Jinja2 template fails to render (template and line named)."""


class JobIntegrityError(InputError):
    """A job folder's files no longer match the hashes in its job.json."""


class JobSealError(JobIntegrityError):
    """A job folder's seal (``job.seal``) is missing, does not match its job.json, or was
    made by a key that is neither this site's nor a trusted one: the job cannot be shown to
    be the one compile wrote."""


class ResultError(DoseprintError):
    """The work ran and its result is a failure the user must act on."""

    exit_code = EXIT_RESULT


class GeometryError(ResultError):
    """A tablet mesh is not watertight, or a boolean operation failed."""


class ReleaseModelError(ResultError):
    """The release model failed (no convergence, mass not conserved)."""


class SlicingError(ResultError):
    """A tablet cannot be sliced into printable paths, or its flow cannot be trimmed."""


class DoseCheckError(ResultError):
    """The dose read back from the G-code misses the prescription beyond the tolerance."""


class PrintFailedError(ResultError):
    """The print did not complete. ``last_acked`` is the last line the firmware took."""

    def __init__(self, message: str, *, last_acked: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.last_acked = last_acked


class PrinterHaltedError(PrintFailedError):
    """The firmware reported ``Error:`` or ``!!``, or reset during the print."""


class PrinterTimeoutError(PrintFailedError):
    """The firmware stopped answering for longer than the no-answer bound."""


class ResendLimitError(PrintFailedError):
    """The firmware asked for the same line again more often than allowed."""


class LineLostError(PrintFailedError):
    """A line or its ``ok`` was lost on a firmware that does not check line numbers
    (Klipper, RepRapFirmware), so sending it again could run it twice."""


class FirmwareRefusedError(PrintFailedError):
    """The firmware is not the one the printer profile names, or lacks a command the job
    uses; found by the pre-flight, before any command of the job was sent."""


class PrintAbortedError(PrintFailedError):
    """The operator stopped the print (Ctrl-C or a signal)."""


class RecordChainError(ResultError):
    """A record or event does not match its hash: the store was altered."""


class RecordStateError(ResultError):
    """The record's status does not allow this step (e.g. releasing a failed print)."""


class EnvironmentFault(DoseprintError):
    """Something around doseprint failed: a port, the database, the disk."""

    exit_code = EXIT_ENVIRONMENT


class PortOpenError(EnvironmentFault):
    """The printer's serial port or pyserial URL cannot be opened."""


class RecordStoreError(EnvironmentFault):
    """The record store cannot be opened, migrated or written."""


class DiskError(EnvironmentFault):
    """A file or folder cannot be written (permissions, disk full)."""


def exit_code_for(exc: BaseException) -> int:
    """Exit code of cli.md for an exception: 1 result, 2 input, 3 environment, 70 bug."""
    if isinstance(exc, DoseprintError):
        return exc.exit_code
    return EXIT_BUG
