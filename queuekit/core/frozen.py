"""``frozen(cls, **fields)``: a frozen dataclass instance, built at half the cost of its generated ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
one call per field. A worker builds the workload message (``workloads.messages``,
dataclasses the workloads share with every stack) for every envelope it decodes.
Filling the instance's ``__dict__`` in one step gives the same object (equality,
hash, repr and immutability are the dataclass's) at about half the cost. The
kit's own per-message types (``Envelope``, ``Outcome``) are msgspec Structs,
cheaper still.

Only for the per-message hot paths, and only with EVERY field given: no
defaults, no ``__post_init__`` and no type coercion run here.
"""
from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")
_new, _set = object.__new__, object.__setattr__


def frozen(cls: type[T], **fields: Any) -> T:
    obj = _new(cls)
    _set(obj, "__dict__", fields)  # the frozen __setattr__ refuses this; object's does it in one step
    return obj
