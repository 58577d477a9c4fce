"""The docs tell the truth about the registry: stack names and counts, generated stack pages, links that resolve."""
from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from queuekit.cli import cli
from queuekit.report.stack_pages import page
from queuekit.stacks.registry import stack_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_N = r"(\d+|" + "|".join(NUMBERS) + r")"
COUNT = re.compile(_N + r" (?:stacks|columns)\b", re.I)  # README, pyproject, --help: any count is the kit's
# docs pages also say "three stacks side by side": there only the kit's size counts ("8 stacks, 20 scenarios",
# "20 scenarios x 8 stacks")
SIZE = re.compile(_N + r" (?:stacks|columns)(?=,? \d+ scenarios)|(?<=scenarios x )" + _N + r" stacks", re.I)
LINK = re.compile(r"\]\(((?!https?:|mailto:|#)[^)\s#]+)(?:#[^)]*)?\)")


def _counts(text: str, pattern: re.Pattern = COUNT) -> set[int]:
    found = [g for m in pattern.finditer(text) for g in m.groups() if g]
    return {int(n) if n.isdigit() else NUMBERS[n.lower()] for n in found}


def test_readme_fits_on_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_readme_stack_table_is_the_registry():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- stacks: start -->")[1].split("<!-- stacks: end -->")[0]
    listed = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert listed == list(stack_names()), f"README's stack table lists {listed}; the registry has {list(stack_names())}"
    matrix = readme.split("<!-- matrix: start -->")[1].split("<!-- matrix: end -->")[0]
    header = next(line for line in matrix.splitlines() if line.startswith("| scenario"))
    # every registered stack is a column (grouped by broker family, as the report orders them)
    assert sorted(c.strip() for c in header.strip("|").split("|")[1:]) == sorted(stack_names())


def test_stack_counts_in_readme_docs_pyproject_and_help_match_the_registry():
    texts = {"README.md": (ROOT / "README.md").read_text(), "pyproject.toml": (ROOT / "pyproject.toml").read_text(),
             "queuekit --help": CliRunner().invoke(cli, ["--help"]).output}
    wrong = {where: sorted(found) for where, text in texts.items() if (found := _counts(text) - {len(stack_names())})}
    wrong |= {str(p.relative_to(ROOT)): sorted(found) for p in DOCS
              if (found := _counts(p.read_text(), SIZE) - {len(stack_names())})}
    assert not wrong, f"stack counts other than the registry's {len(stack_names())}: {wrong}"
    names = CliRunner().invoke(cli, ["compare", "--help"]).output
    assert all(name in names for name in stack_names())


def test_stack_pages_are_what_the_code_generates():
    directory = ROOT / "docs" / "stacks"
    assert sorted(p.stem for p in directory.glob("*.md")) == sorted(stack_names()), "run `queuekit docs`"
    stale = [name for name in stack_names() if (directory / f"{name}.md").read_text() != page(name)]
    assert not stale, f"docs/stacks pages differ from the code for {stale}: run `queuekit docs`"


def test_relative_links_in_readme_and_docs_resolve():
    broken = [(str(doc.relative_to(ROOT)), target) for doc in [ROOT / "README.md", *DOCS]
              for target in LINK.findall(doc.read_text()) if not (doc.parent / target).exists()]
    assert not broken, broken


def test_readme_matrix_is_what_the_committed_run_renders():
    """The README's table is `queuekit report docs/results/latest --readme README.md` of the committed run:
    no number in it that no run produced, and no stack of the registry missing from that run."""
    import json

    from queuekit.report.readme import rewrite
    from queuekit.stacks.registry import stack_names

    results = json.loads((ROOT / "docs/results/latest/results.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert rewrite(readme, results) == readme, "run: queuekit report docs/results/latest --readme README.md"
    assert set(results["stacks"]) == set(stack_names()), "the committed run must cover every registered stack"
