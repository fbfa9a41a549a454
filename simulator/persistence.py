"""Durable state: one JSON document written atomically (temp file + fsync + rename).

Written on every mutating request before the response goes out, so a ``kill -9`` never
loses an accepted operation. The static fleet is not stored; it is re-read from the fleet
file (or regenerated) and the saved mutable state is laid over it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> dict | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text)

    def save(self, state: dict) -> None:
        data = json.dumps(state, separators=(",", ":")).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
