"""doseprint: personalised tablets printed on demand.

The pipeline (docs/architecture.md): prescription -> design -> release prediction ->
slice -> verify -> job folder -> print -> batch record.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
