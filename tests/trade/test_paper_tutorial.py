"""The paper-trading tutorial notebook runs top to bottom with a small budget (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "05_paper_trading.ipynb"


@pytest.mark.slow
def test_paper_trading_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_STEPS", "512")
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[1]))  # the kernel imports this checkout's finrl_lite
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    difference = float(re.search(r"largest difference per bar: (\S+)", text).group(1))
    assert difference <= 1e-9  # paper session == back-test on the same bars
    checked = [int(n) for n in re.findall(r"reconciled (\d+) order", text)]
    assert checked[0] == 0 and checked[1] > 0  # a new session, then the restart that checked its orders
    assert "max order notional" in text  # the risk limit's blocks, with their reasons
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "paper_session" / "journal.sqlite").is_file()
