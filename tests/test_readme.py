"""README's two set-up commands stay in step with .ci/run and the CLI, and every Python block of it runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_exactly_two_setup_commands() -> None:
    commands = _setup_commands()
    assert len(commands) == 2
    assert "finrl-lite" in commands[0] and "configs/quickstart.yaml" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert _setup_commands()[1] in ci_lines


def test_quickstart_config_exists() -> None:
    assert (REPO / "configs" / "quickstart.yaml").is_file()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_has_python_blocks() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 3
    assert any("gymnasium.make_vec(" in b for b in blocks) and any("to_torch(" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs_as_written(index: int) -> None:
    """Each block in a fresh interpreter from the repository root (offline: the synthetic source; any device)."""
    block = _python_blocks()[index]
    result = subprocess.run([sys.executable, "-c", block], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"README block {index}:\n{block}\n{result.stderr[-3000:]}"
