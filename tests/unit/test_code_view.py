"""The code view reads the app packages' [semantics:…] marks: none may point at nothing, none may be missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from queuekit.report import code_view
from queuekit.stacks import registry
from queuekit.suite.concepts import CONCEPTS, concepts_of
from scenarios import BY_NAME


def test_every_mark_points_at_something_and_every_required_concept_is_marked():
    assert code_view.problems() == []


def test_every_concept_explains_real_scenarios():
    for name, concept in CONCEPTS.items():
        assert concept.scenarios, name
        assert [s for s in concept.scenarios if s not in BY_NAME] == [], name
    assert "offset-commit" in concepts_of("replay") and "ack-timing" in concepts_of("crash-mid-task-early-ack")


@pytest.mark.parametrize("workload", ["signup", "video", "tracking"])
def test_view_has_every_registered_stack_with_its_handler_and_concepts(workload):
    view = code_view.view(workload)
    assert list(view) == list(registry.stack_names())
    for stack, blocks in view.items():
        sections = [b.section for b in blocks]
        assert "handler" in sections, stack
        caps = registry.load_stack(stack).capabilities
        assert {c for c, k in CONCEPTS.items() if k.required(caps)} <= set(sections), stack
        for b in blocks:  # the highlighted line is the mark itself, and the code is the file's own text
            assert "[" in b.code.splitlines()[0] and b.code in (Path(code_view.__file__).parents[2] / b.path).read_text()


def test_a_mark_that_points_at_nothing_is_named(tmp_path, monkeypatch):
    pkg = tmp_path / "bogus_app"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "worker.py").write_text("# [semantics:ack-timeing] a typo\nx = 1\n# [handler:signups]\ndef f():\n    pass\n"
                                   "# [sematnics:prefetch]\ny = 2\n# [semantics:retries@nobody]\nz = 3\n")
    (pkg / "stack.py").write_text("from queuekit.stacks.stub import StubStack\n\n\nclass BogusStack(StubStack):\n"
                                  "    name = 'bogus'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.STACKS, "bogus", "bogus_app.stack:BogusStack")
    found = "\n".join(code_view.problems(["bogus"]))
    assert "worker.py:1: unknown concept 'ack-timeing'" in found
    assert "worker.py:3: unknown workload 'signups'" in found
    assert "worker.py:6: unknown mark [sematnics:…]" in found
    assert "worker.py:8: limited to unknown stack 'nobody'" in found
    assert "bogus: its capabilities call for [semantics:dead-letter]" in found  # nothing valid marked at all
    assert "concept 'idempotency': no stack marks it" in found


def test_unknown_workload_is_refused():
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        code_view.view("nope")


def test_queuekit_code_prints_every_stack_in_a_log():
    from click.testing import CliRunner

    from queuekit.cli import cli

    done = CliRunner().invoke(cli, ["code", "signup"], terminal_width=100)
    assert done.exit_code == 0, done.output
    for stack in registry.stack_names():  # not a TTY: one stack under another, every registered one
        assert f"─ {stack} ─" in done.output
    assert "kafka_app/offsets.py" in done.output and "explains: crash-mid-task" in done.output
    assert "…" not in done.output
