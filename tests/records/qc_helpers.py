"""Helpers for the QC and report tests: a full record content, and events added by hand.

Until the store accepts ``qc`` events, :func:`extend` appends an event to a Record value
with a correct hash chain, as the store would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from doseprint.records.chain import event_hash
from doseprint.records.values import Event, Record


def full_content(
    doses_mg: tuple[float, ...] = (125.0, 100.0, 75.0),
    *,
    volumes: bool = True,
    patient: str = "PT-7F3A",
) -> dict[str, Any]:
    """A record content of the shape ``printing.record_content`` builds, one API per tablet.

    With ``volumes`` the actives carry ``design_volume_mm3`` and the materials
    ``density_g_cm3`` (1.25 g/cm³, 0.3 drug loading: 125 mg needs 333.33 mm³).
    """
    tablets = []
    for i, dose in enumerate(doses_mg):
        volume = dose / (1.25 * 0.3)
        active: dict[str, Any] = {
            "api": "theophylline",
            "tool": 0,
            "dose_mg": dose,
            "gcode_dose_mg": round(dose * 1.001, 4),
            "dose_error_pct": 0.1,
            "release": {
                "kind": "t80",
                "target": 8.0,
                "t50_h": 3.1,
                "t80_h": 7.9,
                "f2": None,
                "met": True,
            },
        }
        if volumes:
            active["design_volume_mm3"] = round(volume, 4)
        tablets.append(
            {
                "index": i,
                "design": {
                    "shape": "cylinder",
                    "summary": "cylinder 10.00 × 4.24 mm",
                    "volume_mm3": round(volume, 4),
                    "infill": 1.0,
                    "layers": 21,
                },
                "actives": [active],
            }
        )
    material: dict[str, Any] = {
        "tool": 0,
        "formulation": "theophylline-hpc-30",
        "api": "theophylline",
        "formulation_sha256": "12" * 32,
        "lot": "LOT-ABC123",
    }
    if volumes:
        material["density_g_cm3"] = 1.25
        material["drug_loading"] = 0.3
    return {
        "schema": "doseprint.record-content/1",
        "doseprint_version": "0.1.0",
        "prescription": {"id": "RX-2026-000123", "sha256": "ab" * 32, "patient": patient},
        "job": {
            "folder": "/tmp/job",
            "json_sha256": "cd" * 32,
            "gcode_sha256": "ef" * 32,
            "gcode_lines": 1234,
            "doseprint_version": "0.1.0",
            "created_utc": "2026-11-22T09:00:00Z",
        },
        "tablets": tablets,
        "materials": [material],
        "machine": {
            "printer": "marlin-dual-175",
            "printer_sha256": "34" * 32,
            "port": "socket://127.0.0.1:5555",
            "baud": 115200,
        },
        "operator": "Ana Operator",
        "warnings": [],
    }


def extend(record: Record, kind: str, data: dict[str, Any], actor: str) -> Record:
    """``record`` with one more event, chained and hashed as the store does."""
    seq = len(record.events)
    utc = f"2026-11-22T11:00:{seq:02d}.000Z"
    digest = event_hash(record.id, seq, utc, actor, kind, data, record.head_hash)
    event = Event(record.id, seq, utc, actor, kind, data, record.head_hash, digest)  # type: ignore[arg-type]
    return dataclasses.replace(record, events=(*record.events, event))
