"""File helpers every stage shares: streamed sha256 and atomic writes (hidden temporary file, then rename)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _part(dest: Path) -> Path:
    """The hidden temporary file a write to `dest` goes through (the corpus reader ignores dot files)."""
    return dest.with_name(f".{dest.name}.part-{os.getpid()}")


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    """Write via a hidden temp file (ignored by the corpus reader) and rename, so a crash leaves no half file."""
    tmp = _part(dest)
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy a file (streamed) via a hidden temp file and rename, so a crash leaves no half file."""
    tmp = _part(dest)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
