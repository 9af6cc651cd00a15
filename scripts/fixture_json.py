"""The fixtures' deterministic JSON writer and manifest, shared by the exporters
(scripts/export_tf_fixtures.py, scripts/export_keras_sync_fixtures.py). No TensorFlow import
here: importing export_tf_fixtures.py would configure TF's threads, which the synchronized
exporter's 16-replica strategy cannot run on."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def dump(obj, indent=0):
    """Sorted keys, two-space indent, arrays of numbers on one line, repr for floats."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return "[" + ",".join(num(v) for v in obj) + "]"
        if all(isinstance(v, str) for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(f"{pad}  {dump(v, indent + 1)}" for v in obj) + "\n" + pad + "]"
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return json.dumps(obj)
    if isinstance(obj, (int, float)):
        return num(obj)
    raise TypeError(type(obj))


def num(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("NaN/Infinity cannot be written to a fixture (JSON has no such numbers)")
    return repr(f)  # shortest digits that round-trip to this exact double


def write_manifest(fixtures_dir: Path):
    files = sorted(p for p in fixtures_dir.rglob("*.json") if p.name != "manifest.json")
    entries = {str(p.relative_to(fixtures_dir)).replace(os.sep, "/"): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    doc = {"format": "bn-conformance-manifest/1", "algorithm": "sha256", "files": entries}
    (fixtures_dir / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
