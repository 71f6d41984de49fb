"""Comparing a dataset's class split with the one a run recorded.

A class split derived from the data itself (an image folder's seeded split) changes when
the data does: one class folder added and the test split may hold training classes. A
run records its split (`DatasetSpec.class_splits`), and `class_split_changes` says, in
one line, what differs today, so evaluation can refuse instead of silently mixing splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ClassSplits = Mapping[str, Sequence[str]]


def class_split_changes(recorded: ClassSplits, current: ClassSplits) -> str | None:
    """What differs between two `{split: class names}` tables, or None if nothing does.

    Example:
    >>> class_split_changes({"train": ["a"], "test": ["b"]},
    ...                     {"train": ["a"], "test": ["b", "c"]})
    "classes added: ['c']; split 'test' gained ['c']"
    """
    before = {name for names in recorded.values() for name in names}
    now = {name for names in current.values() for name in names}
    changes = []
    if now - before:
        changes.append(f"classes added: {_few(now - before)}")
    if before - now:
        changes.append(f"classes removed: {_few(before - now)}")
    for split in sorted(set(recorded) | set(current)):
        old, new = set(recorded.get(split, ())), set(current.get(split, ()))
        gained, lost = new - old, old - new
        if gained or lost:
            moved = [f"gained {_few(gained)}" if gained else "",
                     f"lost {_few(lost)}" if lost else ""]
            changes.append(f"split '{split}' " + " and ".join(part for part in moved if part))
    return "; ".join(changes) or None


def _few(names: set[str], limit: int = 5) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return f"{ordered[:limit]}{more}"
