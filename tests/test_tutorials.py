"""The tutorial notebooks run top to bottom with a small budget (offline)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_stock_trading.ipynb", "04_population.ipynb"])
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_STEPS", "512")
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if name == "04_population.ipynb":  # the embedded Ray's session folder: a short path (socket names are limited)
        ray_tmp = Path(tempfile.mkdtemp(prefix="ray"))
        request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
        monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
        monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "execute_result" for o in outputs)
    assert os.environ["FINRL_LITE_TUTORIAL_STEPS"] == "512"
