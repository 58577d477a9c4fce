"""`queuekit run` end to end: N in, N effects, the malformed message in the DLQ with its reason."""
from __future__ import annotations

import os
import subprocess
import sys


def test_run_prints_the_tally_with_the_dead_letter_reason(kit):
    done = subprocess.run([sys.executable, "-m", "queuekit", "run", "dramatiq", "signup", "-n", "25",
                           "--malformed", "1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in done.stderr.splitlines() if line.count("│") == 3}
    assert rows["published (confirmed)"] == "25"
    assert rows["effects signup"] == "25"
    assert rows["duplicates signup"] == "0"
    assert rows["dead letters"] == "1"
    assert "missing field 'user_id'" in rows["reason"]
