"""Generated docs must match the code they are generated from."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def test_generated_docs_are_fresh():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, render in module.GENERATED.items():
        assert path.read_text() == render(), f"{path} is stale: run python scripts/gen_docs.py"
