"""The README's "Your data" example runs as printed (its shell lines, then its Python block), in a fresh folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_blocks(title: str) -> dict[str, str]:
    text = README.read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return {lang: body for lang, body in re.findall(r"```(bash|python)\n(.*?)```", section, re.S)}


def test_the_your_data_example_runs_as_printed(tmp_path):
    blocks = _section_blocks("Your data")
    assert set(blocks) == {"bash", "python"}
    venv = Path(sys.executable).parent
    env = os.environ | {"BRAINKIT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    # The README names the project's .venv; here it is the interpreter running the tests, wherever it lives.
    script = blocks["bash"].replace(".venv/bin/", f"{venv}/")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs/my_study/report.html").is_file()
    rows: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():  # the run's table comes first (then eval's, in other columns)
        if line.startswith(("Ridge ", "Lite-Mind ")):
            rows.setdefault(line.split()[0], line.split())
    # What the README says of the table (method, parameters, training s, top-1, ...): ridge 100 % 8-way top-1,
    # Lite-Mind above the 12.5 % chance.
    assert rows["Ridge"][3] == "100.0%" and float(rows["Lite-Mind"][3].rstrip("%")) > 12.5, rows
    done = subprocess.run([sys.executable, "-c", blocks["python"]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "found.html").is_file()
    best = re.findall(r"'(stim\d+\.png)'", done.stdout)
    assert len(best) == 8, done.stdout
