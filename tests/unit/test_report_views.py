"""report.html's compact matrix, code section and derived guide render every registered stack (no broker:
a small results.json fixture over the registry's stacks, ``tests.helpers.results_over_registry``)."""
from __future__ import annotations

import re

import pytest

from queuekit.report import html_report, markdown
from queuekit.report.compact import families, ordered, per_family, shown_numbers
from queuekit.stacks.registry import load_stack, stack_names
from queuekit.suite.concepts import CONCEPTS
from tests.helpers import results_over_registry


@pytest.fixture(scope="module")
def page() -> str:
    return html_report(results_over_registry())


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(start):page.index(end, page.index(start))]


def test_compact_matrix_has_every_stack_grouped_by_family(page):
    compact = _section(page, 'id="compact"', "</table>")
    heads = re.findall(r'<th class="stack" data-stack="([^"]+)" data-family="([^"]+)"', compact)
    assert [s for s, _ in heads] == ordered(results_over_registry())
    assert sorted(s for s, _ in heads) == sorted(stack_names())
    seen = [f for _, f in heads]
    assert seen == sorted(seen, key=seen.index)  # each family's columns side by side
    for s in stack_names():  # a cell per stack and scenario, linkable, its detail naming the lines that decide it
        assert f'id="cell-replay-{s}"' in compact and f'href="#code-{s}-offset-commit"' in compact


def test_compact_cell_shows_word_and_differing_number(page):
    cell = re.search(r'<td id="cell-replay-kafka"[^>]*class="m-designed"><button[^>]*>(.*?)</button>', page).group(1)
    assert cell == '<span class="w">ok</span><span class="n">20</span>'
    lost = re.search(r'<td id="cell-crash-mid-task-early-ack-celery"[^>]*class="m-lost"><button[^>]*>(.*?)</button>',
                     page).group(1)
    assert lost == '<span class="w">lost</span><span class="n">1</span>'
    assert page.index('id="differences"') < page.index('id="guide"') < page.index('id="code"') < page.index('id="matrix"')


def test_code_section_has_every_stack_and_every_concept_linked_to_its_cells(page):
    code = _section(page, 'id="code"', "</table>")
    assert re.findall(r'<thead><tr><th>section</th>(.*?)</tr>', code)[0].count("<th ") == len(stack_names())
    for concept, spec in CONCEPTS.items():
        assert f'id="code-row-{concept}"' in code
        for s in stack_names():
            if spec.required(load_stack(s).capabilities):
                assert f'id="code-{s}-{concept}"' in code
    # the offset-commit block on kafka links back to the replay cell it explains, coloured by what it observed
    assert re.search(r'id="code-kafka-offset-commit".*?<a class="m-designed" href="#cell-replay-kafka">', code, re.S)
    assert '<span class="ln mk">' in code and 'class="k"' in code  # the mark highlighted, pygments' classes


def test_guide_is_derived_per_family_and_links_its_evidence(page):
    guide = _section(page, 'id="guide"', "</ul>")
    assert "Replay history for a new consumer or a bug fix" in guide
    fam = families(results_over_registry())
    replayers = [s for s in stack_names() if load_stack(s).capabilities.replayable]
    assert "best observed: " + ", ".join(replayers) in guide
    for family in set(fam.values()):
        assert f"{family}: " in guide
    assert '<a href="#cell-replay-kafka">kafka 20</a>' in guide and 'href="#code-row-offset-commit"' in guide


def test_markdown_guide_names_best_per_family_and_the_deciding_lines():
    md = markdown(results_over_registry())
    [line] = [x for x in md.splitlines() if x.startswith("- **Replay history")]
    fam = families(results_over_registry())
    replayed = {s: 20 if load_stack(s).capabilities.replayable else 0 for s in stack_names()}
    for family in dict.fromkeys(fam.values()):  # in each family, the stacks that replayed the most
        own = {s: v for s, v in replayed.items() if fam[s] == family}
        best = [s for s, v in own.items() if v == max(own.values())]
        assert f"{family}: {'all alike' if len(best) == len(own) > 1 else ', '.join(best)}" in line
    assert "The lines that decide it: offset-commit" in line


def test_a_row_shows_the_differing_number_that_decided_a_colour():
    def cell(stack, refused, in_flight):
        return {"scenario": "back-pressure", "stack": stack, "mismatches": [], "seconds": 1.0,
                "observed": {"max_in_flight_per_consumer": in_flight, "publisher_refused": refused},
                "expected": {"max_in_flight_per_consumer": "any", "publisher_refused": "any"}}
    results = {"stacks": ["a", "b"], "scenarios": [{"name": "back-pressure"}],
               "cells": [cell("a", 0, 2), cell("b", 30, 0)]}
    # both numbers differ; publisher_refused is the one that coloured b "refused"
    assert shown_numbers(results) == {"back-pressure": "publisher_refused"}


def test_per_family_names_only_what_tells_the_stacks_apart():
    fam = {"a": "rabbitmq", "b": "rabbitmq", "c": "kafka", "d": "kafka"}
    row = {"verdict": "best observed: a, c", "values": {"a": 0, "b": 3, "c": 0, "d": 0},
           "by_family": {"rabbitmq": ["a"], "kafka": ["c", "d"]}}
    assert per_family(row, fam) == {"rabbitmq": ["a"], "kafka": None}  # None: the family's stacks alike
    assert per_family({**row, "verdict": "no difference observed"}, fam) == {}
