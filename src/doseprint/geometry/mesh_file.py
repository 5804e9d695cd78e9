"""A mesh from a file (STL, 3MF, OBJ, PLY) that release can be predicted for: one
watertight, consistently wound solid, outward facing."""

from __future__ import annotations

from pathlib import Path

import trimesh

from doseprint.errors import InputError


def read_watertight_mesh(path: Path) -> trimesh.Trimesh:
    """The mesh in ``path``, checked to bound a volume (turned outward if it faces in).

    Raises
    ------
    InputError
        The file cannot be read as a mesh, holds none, or is not watertight and
        consistently wound (its volume and surface are then undefined).
    """
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as exc:  # trimesh raises many kinds for files it cannot read
        raise InputError(f"cannot be read as a mesh: {exc}", file=str(path)) from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError("holds no mesh", file=str(path))
    if not loaded.is_watertight or not loaded.is_winding_consistent:
        raise InputError("is not a watertight, consistently wound mesh: its volume and "
                         "surface are undefined (repair it first)", file=str(path))
    if loaded.volume <= 0:
        loaded.invert()
    return loaded


__all__ = ["read_watertight_mesh"]
