"""Tutorials 01, 02 and 04 run top to bottom with a small budget (offline), and are what tutorials/build_notebooks.py writes."""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
STEPS = 512


def _builder():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("build_notebooks", TUTORIALS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _execute(nb: nbformat.NotebookNode) -> list[dict]:
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _text(outputs: list[dict]) -> str:
    parts = [o.get("text", "") for o in outputs if o.get("output_type") == "stream"]
    shown = [o.get("data", {}) for o in outputs if o.get("output_type") in ("execute_result", "display_data")]
    parts += [data.get(kind, "") for data in shown for kind in ("text/plain", "text/html")]
    return "\n".join(parts)


def test_committed_notebooks_are_what_the_builder_writes() -> None:
    builder = _builder()
    for name, cells in builder.NOTEBOOKS.items():
        committed = (TUTORIALS / name).read_text()
        assert committed == nbformat.writes(builder.notebook(cells)) + "\n", f"{name}: run python tutorials/build_notebooks.py"
        nb = nbformat.reads(committed, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: commit it without outputs"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_stock_trading.ipynb"])
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_STEPS", str(STEPS))
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    before = sorted(p.name for p in TUTORIALS.iterdir())
    outputs = _execute(nbformat.read(TUTORIALS / name, as_version=4))
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = _text(outputs)
    assert f"learned from {STEPS:,} environment steps (asked {STEPS:,})" in text  # the budget set is the budget used
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE), "a NaN is printed where a number is expected"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the plots are shown inline
    assert sorted(p.name for p in TUTORIALS.iterdir()) == before  # nothing written into the repository


@pytest.mark.slow
def test_quickstart_writes_to_a_temporary_folder_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without FINRL_LITE_TUTORIAL_OUT the runs go to a new temporary folder, not into tutorials/."""
    monkeypatch.delenv("FINRL_LITE_TUTORIAL_OUT", raising=False)
    nb = nbformat.read(TUTORIALS / "01_quickstart.ipynb", as_version=4)
    nb.cells = nb.cells[:2]  # the introduction and the set-up cell
    text = _text(_execute(nb))
    run_dir = Path(re.search(r"run directory: (\S+)", text).group(1))
    kernel_tmp = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())  # the kernel's (tests/conftest.py sets TMPDIR)
    assert run_dir.parent.parent == kernel_tmp and run_dir.parent.name.startswith("finrl_lite_quickstart_")
    assert not (TUTORIALS / "tutorial_runs").exists()
    run_dir.parent.rmdir()  # the set-up cell made it (empty)


@pytest.mark.slow
def test_population_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tutorial 04: a tiny population and a rolling-window ensemble on an embedded Ray (its session folder is the
    test session's sandbox, tests/conftest.py), plots inline, no NaN printed, nothing written into the repository."""
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_STEPS", str(STEPS))
    monkeypatch.setenv("FINRL_LITE_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    before = sorted(p.name for p in TUTORIALS.iterdir())
    outputs = _execute(nbformat.read(TUTORIALS / "04_population.ipynb", as_version=4))
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not re.search(r"\bnan\b", _text(outputs), flags=re.IGNORECASE), "a NaN is printed where a number is expected"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the plots are shown inline
    assert sorted(p.name for p in TUTORIALS.iterdir()) == before
