"""docs/run-it-yourself.md's marked shell blocks (``<!-- by-hand: NAME -->`` before a bash fence), for tests that run them."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "docs" / "run-it-yourself.md"  # the by-hand recipe
BLOCK = re.compile(r"<!-- by-hand: (?P<name>[a-z ]+) -->\n```bash\n(?P<body>.*?)```", re.S)


def blocks() -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer(README.read_text())}


def shell_env(**extra: str) -> dict[str, str]:
    """The environment of a person who ran ``source .venv/bin/activate``: celery, dramatiq, python, queuekit on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1", **extra}
