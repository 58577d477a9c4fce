"""The by-hand page's marked shell blocks (``<!-- by-hand: NAME -->`` before a bash fence), for tests that run them.

They live in docs/by-hand.md; a block also left in the README (until it points there) is read only when the page
lacks it."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BY_HAND = ROOT / "docs" / "by-hand.md"
BLOCK = re.compile(r"<!-- by-hand: (?P<name>[a-z ]+) -->\n```bash\n(?P<body>.*?)```", re.S)


def blocks() -> dict[str, str]:
    found = {m["name"]: m["body"] for m in BLOCK.finditer(README.read_text())}
    return found | {m["name"]: m["body"] for m in BLOCK.finditer(BY_HAND.read_text())}


def shell_env(**extra: str) -> dict[str, str]:
    """The environment of a person who ran ``source .venv/bin/activate``: celery, dramatiq, python, queuekit on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1", **extra}
