"""openai_server/ holds only what runs in an API worker: importing all of it loads no engine.

The engine-side start of the API (the IPC server over the evaluator, the worker pool) is
src/openai_service.py; a module of openai_server/ that imported the evaluator, the
document store, the backends or torch would make every worker pay for them.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import openai_server

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SIDE = ("torch", "src.evaluate", "src.docqa", "src.engine")

PROBE = """
import importlib, json, pkgutil, sys
import openai_server
names = [m.name for m in pkgutil.walk_packages(openai_server.__path__, "openai_server.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def test_no_openai_server_module_imports_the_engine_torch_or_the_document_store():
    expected = {m.name for m in pkgutil.walk_packages(openai_server.__path__, "openai_server.")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report["imported"]) == expected and "openai_server.worker" in expected
    loaded = [m for m in report["modules"]
              if any(m == name or m.startswith(name + ".") for name in ENGINE_SIDE)]
    assert loaded == []

