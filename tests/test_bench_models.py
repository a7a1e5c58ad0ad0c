"""bench/bench_models.py --quick: one line per model with the ratio field, % of peak and peak RSS."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_models.py"


def test_quick_bench_prints_a_line_per_model():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--models", "lite_mind,ridge,sit"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert sorted(line.split()[0] for line in lines) == ["lite_mind", "ridge", "sit"]
    by_model = {line.split()[0]: line for line in lines}
    for name in ("lite_mind", "sit"):
        fields = dict(part.split("=", 1) for part in by_model[name].split()[1:])
        assert {"ratio_vs_released", "pct_of_peak", "rss_gb", "step_s", "gflop"} <= set(fields)
        assert float(fields["step_s"]) > 0 and 0 < float(fields["rss_gb"]) < 8
        assert 0 <= float(fields["pct_of_peak"]) <= 100
    assert "closed-form fit, no optimiser step" in by_model["ridge"]
