"""The M-ELO tutorial notebook runs end to end with a tiny budget."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "03_melo.ipynb"


@pytest.mark.slow
def test_tutorial_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("DAYS", "1"), ("ENVS", "1"), ("PERIODS", "40"), ("EVAL_DAYS", "2")):
        monkeypatch.setenv(f"MELO_TUTORIAL_{name}", value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs) + "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    for phrase in ("regime of the period just seen", "mean reward per day", "previous regime", "frontier gap per day"):
        assert phrase in text, phrase
    assert "best static on the evaluation days" in text and "hindsight" in text and "published one-action" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
