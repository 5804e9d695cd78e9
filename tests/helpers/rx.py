"""Small prescriptions for tests, written as TOML text."""

from __future__ import annotations

from pathlib import Path


def write_rx(
    folder: Path,
    *,
    api: str = "theophylline",
    dose_mg: float = 100.0,
    release: str = "sustained",
    extra_active: str = "t80_h = 8.0",
    units: int = 2,
    tablet: str = "",
    schedule: list[float] | None = None,
    name: str = "rx.toml",
) -> Path:
    """Write a one-active prescription and return its path."""
    text = f'''schema = "doseprint.prescription/1"
id = "RX-TEST-1"
patient = "PT-0001"

[[actives]]
api = "{api}"
dose_mg = {dose_mg}
release = "{release}"
{extra_active}
'''
    if tablet:
        text += f"\n[tablet]\n{tablet}\n"
    text += f"\n[dispense]\nunits = {units}\n"
    if schedule is not None:
        text += f'\n[[dispense.schedule]]\napi = "{api}"\ndoses_mg = {schedule}\n'
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
