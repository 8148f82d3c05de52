"""The built-in sample images listed in ``static/samples/manifest.json``.

Manifest: ``{"samples": [{"id", "dataset", "label", "label_index", "file", "source_index"}]}``
with ``file`` relative to ``static/samples/``. It is re-read when the file changes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from .errors import ApiError

__all__ = ["SampleLibrary"]


class SampleLibrary:
    def __init__(self, samples_dir: Path) -> None:
        self.dir = samples_dir
        self.manifest = samples_dir / "manifest.json"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._samples: list[dict[str, Any]] = []

    def all(self) -> list[dict[str, Any]]:
        """Every sample of the manifest (none when there is no manifest)."""
        try:
            stat = self.manifest.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                entries = json.loads(self.manifest.read_text(encoding="utf-8")).get("samples", [])
                self._samples = [
                    e for e in entries if isinstance(e, dict) and "id" in e and "file" in e
                ]
                self._stamp = stamp
            return self._samples

    def listing(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """The API's view of the samples: id, dataset, label, label_index, url."""
        return [
            {
                "id": str(s["id"]),
                "dataset": str(s.get("dataset", "")),
                "label": str(s.get("label", "")),
                "label_index": int(s.get("label_index", -1)),
                "url": f"/static/samples/{s['file']}",
            }
            for s in self.all()
            if dataset is None or s.get("dataset") == dataset
        ]

    def read(self, sample_id: str) -> bytes:
        """The bytes of a sample image; 422 for an id that is not in the manifest."""
        for sample in self.all():
            if str(sample["id"]) == sample_id:
                path = (self.dir / str(sample["file"])).resolve()
                if self.dir.resolve() not in path.parents:  # the manifest must not point outside
                    break
                try:
                    return path.read_bytes()
                except OSError:
                    break
        ids = [str(s["id"]) for s in self.all()]
        hint = (
            f"; see GET /api/v1/samples ({len(ids)} samples)" if ids else "; there are no samples"
        )
        raise ApiError(422, "unknown_sample", f"there is no sample {sample_id!r}{hint}")
