"""Grades as a terminal table, as JSON, and as JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from waza.tasks.grading import Grade

STYLES = {"passed": "green", "failed": "bold red", "skipped": "yellow"}


def grades_table(grades: list[Grade]) -> Table:
    counts = Counter(grade.status for grade in grades)
    table = Table(title="Regression check", caption=_summary(counts))
    # Ids wrap rather than lose characters: a failing row must lead to its file.
    table.add_column("task", overflow="fold", ratio=3)
    table.add_column("result", no_wrap=True)
    table.add_column("session", overflow="fold", ratio=2)
    table.add_column("reasons", overflow="fold", ratio=4)
    for grade in grades:
        # Task ids and reasons come from telemetry: shown as plain text, never as markup.
        table.add_row(
            Text(grade.task_id),
            Text(grade.status, style=STYLES[grade.status]),
            Text(grade.session_id or "-"),
            Text("; ".join(grade.reasons)),
        )
    return table


def grades_json(grades: list[Grade]) -> dict[str, Any]:
    counts = Counter(grade.status for grade in grades)
    return {
        "tasks": len(grades),
        "passed": counts["passed"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
        "results": [
            {
                "task": g.task_id,
                "status": g.status,
                "session_id": g.session_id,
                "reasons": g.reasons,
                "error": {"type": g.error.type, "message": g.error.message} if g.error else None,
                "graders": [
                    {"name": r.name, "type": r.type, "passed": r.passed, "score": r.score, "reason": r.reason}
                    for r in g.results
                ],
            }
            for g in grades
        ],
    }


def write_junit(grades: list[Grade], path: Path, suite: str = "waza") -> None:
    """One test case per task: a broken run is an ``error`` of the exception's type, a miss a ``failure``."""
    counts = Counter(grade.status for grade in grades)
    errors = sum(1 for grade in grades if grade.error is not None)
    root = ElementTree.Element("testsuites", name=suite)
    element = ElementTree.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(grades)),
        failures=str(counts["failed"] - errors),
        errors=str(errors),
        skipped=str(counts["skipped"]),
    )
    for grade in grades:
        case = ElementTree.SubElement(element, "testcase", name=grade.task_id, classname=grade.skill or suite)
        session = f"\nsession: {grade.session_id}" if grade.session_id else ""
        if grade.error is not None:
            error = ElementTree.SubElement(case, "error", message=grade.error.message, type=grade.error.type)
            error.text = "\n".join(grade.reasons) + session
        elif grade.status == "failed":
            failure = ElementTree.SubElement(
                case, "failure", message="; ".join(grade.reasons), type="regression"
            )
            failure.text = "\n".join(grade.reasons) + session
        elif grade.status == "skipped":
            ElementTree.SubElement(case, "skipped", message="; ".join(grade.reasons))
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _summary(counts: Counter[str]) -> str:
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
