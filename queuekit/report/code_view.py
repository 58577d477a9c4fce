"""The code view: the lines of every registered stack that decide delivery, read from the app packages' own marks.

A mark is a comment in an app package (docs/code-view.md):

    # [semantics:<concept>] why            the line(s) below (or this line) decide <concept>
    # [semantics:<concept>@s1,s2] why      ... only for these stacks of a package several stacks share
    # [handler:<workload>|*] / [topology:<workload>|*]   the def or statement below

Nothing here is written per stack: a stack's package comes from the registry,
its marks from its source, so the view cannot drift from the code. ``problems``
names every mark that points at nothing (an unknown concept, section, workload
or stack; a concept no stack marks; a stack whose capabilities call for a concept
its package does not mark).
"""
from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from queuekit.stacks import registry
from queuekit.suite.concepts import CONCEPTS, SECTIONS
from workloads import WORKLOADS

MARK = re.compile(r"#\s*\[(?P<kind>[a-z]+):(?P<names>[\w*.,-]+?)(?:@(?P<only>[\w,-]+))?\]\s*(?P<why>.*)")
KINDS = ("semantics", *SECTIONS)
MAX_LINES = {"semantics": 12, "handler": 40, "topology": 30}  # longer blocks are cut, saying where the rest is


@dataclass(frozen=True)
class Mark:
    kind: str  # "semantics" | "handler" | "topology"
    names: tuple[str, ...]  # concepts, or workloads ("*" = every workload)
    only: tuple[str, ...]  # the stacks it is limited to; () = every stack of the package
    file: Path
    line: int  # 1-based, where the comment is
    why: str


@dataclass(frozen=True)
class Block:
    """What the view shows for one mark on one stack."""
    section: str  # a concept name, "handler" or "topology"
    path: str  # relative to the repository, e.g. kafka_app/offsets.py
    start: int
    code: str
    marked: int  # the line the mark sits on (highlighted)
    why: str
    cut: int = 0  # lines left out at the end


def package_of(stack: str) -> Path | None:
    """The directory of the app package a stack lives in; None for a class outside one (the StubStack), or for a
    stack this checkout does not register (a results.json from elsewhere)."""
    target = registry.STACKS.get(stack)
    if target is None:
        return None
    module = target.split(":")[0] if isinstance(target, str) else target.__module__
    top = module.split(".")[0]
    if top == "queuekit":
        return None
    spec = importlib.util.find_spec(top)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


@cache
def _marks_in(package: Path) -> tuple[Mark, ...]:
    found = []
    for file in sorted(package.glob("*.py")):
        lines = file.read_text().splitlines()
        for number, text in enumerate(lines, 1):
            m = MARK.search(text)
            if not m:
                continue
            why = [m.group("why").strip()]
            if text.lstrip().startswith("#"):  # a comment line: the reason goes on until the code
                for more in lines[number:]:
                    if not more.lstrip().startswith("#") or MARK.search(more):
                        break
                    why.append(more.strip().lstrip("#").strip())
            found.append(Mark(m.group("kind"), tuple(m.group("names").split(",")),
                              tuple(filter(None, (m.group("only") or "").split(","))), file, number,
                              " ".join(filter(None, why))))
    return tuple(found)


def marks(stack: str) -> list[Mark]:
    """The marks that apply to ``stack``: its package's, less those limited to other stacks."""
    package = package_of(stack)
    return [m for m in _marks_in(package) if not m.only or stack in m.only] if package else []


def _statement_end(tree: ast.Module, line: int) -> int | None:
    """The last line of the statement (or decorated definition) that starts on ``line``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            if first == line:
                return node.end_lineno
    return None


@cache
def _source(file: Path) -> tuple[list[str], ast.Module]:
    text = file.read_text()
    return text.splitlines(), ast.parse(text)


def block(mark: Mark, section: str) -> Block:
    """The comment and the code it sits on: the statement below a comment line, or the line it trails."""
    lines, tree = _source(mark.file)
    code_line = mark.line
    if lines[mark.line - 1].lstrip().startswith("#"):  # a comment line: the code is the next non-comment line
        while code_line < len(lines) and (not lines[code_line - 1].strip()
                                          or lines[code_line - 1].lstrip().startswith("#")):
            code_line += 1
    end = _statement_end(tree, code_line) or code_line
    cap = mark.line + MAX_LINES[mark.kind] - 1
    root = mark.file.parent.parent
    return Block(section, str(mark.file.relative_to(root)), mark.line, "\n".join(lines[mark.line - 1:min(end, cap)]),
                 mark.line, mark.why, max(0, end - cap))


def view(workload: str, stacks: list[str] | None = None) -> dict[str, list[Block]]:
    """Per stack (the registry's order): handler, topology, then each concept's lines, for one workload."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    out = {}
    for stack in stacks or list(registry.stack_names()):
        own = marks(stack)
        blocks = [block(m, m.kind) for kind in SECTIONS for m in own
                  if m.kind == kind and ("*" in m.names or workload in m.names)]
        blocks += [block(m, c) for c in CONCEPTS for m in own if m.kind == "semantics" and c in m.names]
        out[stack] = blocks
    return out


def problems(stacks: list[str] | None = None) -> list[str]:
    """Every mark that points at nothing, and every concept a stack's capabilities call for but it does not mark."""
    stacks = stacks or list(registry.stack_names())
    found: list[str] = []
    marked: dict[str, set[str]] = {}
    for stack in stacks:
        package = package_of(stack)
        for m in _marks_in(package) if package else ():
            where = f"{m.file.parent.name}/{m.file.name}:{m.line}"
            if m.kind not in KINDS:
                found.append(f"{where}: unknown mark [{m.kind}:…]; marks are {', '.join(KINDS)}")
                continue
            known = CONCEPTS if m.kind == "semantics" else (*WORKLOADS, "*")
            found += [f"{where}: unknown {'concept' if m.kind == 'semantics' else 'workload'} {n!r}"
                      for n in m.names if n not in known]
            found += [f"{where}: limited to unknown stack {s!r}" for s in m.only if s not in registry.STACKS]
        own = {n for m in marks(stack) if m.kind == "semantics" for n in m.names}
        marked[stack] = own
        caps = registry.load_stack(stack).capabilities
        found += [f"{stack}: its capabilities call for [semantics:{c}] and its package marks no such line"
                  for c, concept in CONCEPTS.items() if concept.required(caps) and c not in own]
    found += [f"concept {c!r}: no stack marks it" for c in CONCEPTS if not any(c in s for s in marked.values())]
    return list(dict.fromkeys(found))
