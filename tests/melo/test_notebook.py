"""The M-ELO tutorial notebook runs end to end with a tiny budget."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "03_melo.ipynb"


@pytest.mark.slow
def test_tutorial_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELO_TUTORIAL_DAYS", "1")
    monkeypatch.setenv("MELO_TUTORIAL_ENVS", "1")
    monkeypatch.setenv("MELO_TUTORIAL_PERIODS", "40")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "best static" in outputs and "mean reward per day" in outputs
    assert os.environ["MELO_TUTORIAL_DAYS"] == "1"
