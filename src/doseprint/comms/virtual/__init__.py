"""The virtual printer: a simulated Marlin 2.1 (:mod:`~doseprint.comms.virtual.firmware`,
without I/O) and the servers that put it on a pseudo-terminal or a TCP port
(:mod:`~doseprint.comms.virtual.servers`).
"""

from doseprint.comms.virtual.firmware import (
    EXTRUDE_MINTEMP_C,
    FAULT_OPTIONS,
    FIRMWARE_NAME,
    Faults,
    VirtualMarlin,
)
from doseprint.comms.virtual.servers import (
    VirtualMode,
    run_virtual_printer,
    serve_pty,
    serve_tcp,
)

__all__ = [
    "EXTRUDE_MINTEMP_C",
    "FAULT_OPTIONS",
    "FIRMWARE_NAME",
    "Faults",
    "VirtualMarlin",
    "VirtualMode",
    "run_virtual_printer",
    "serve_pty",
    "serve_tcp",
]
