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
    table = Table("task", "result", "session", "reasons", title="Regression check", caption=_summary(counts))
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
            {"task": g.task_id, "status": g.status, "session_id": g.session_id, "reasons": g.reasons}
            for g in grades
        ],
    }


def write_junit(grades: list[Grade], path: Path, suite: str = "waza") -> None:
    """One test case per task, its failure message the reasons it failed."""
    counts = Counter(grade.status for grade in grades)
    root = ElementTree.Element("testsuites", name=suite)
    element = ElementTree.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(grades)),
        failures=str(counts["failed"]),
        errors="0",
        skipped=str(counts["skipped"]),
    )
    for grade in grades:
        case = ElementTree.SubElement(element, "testcase", name=grade.task_id, classname=grade.skill or suite)
        if grade.status == "failed":
            failure = ElementTree.SubElement(
                case, "failure", message="; ".join(grade.reasons), type="regression"
            )
            failure.text = "\n".join(grade.reasons) + (
                f"\nsession: {grade.session_id}" if grade.session_id else ""
            )
        elif grade.status == "skipped":
            ElementTree.SubElement(case, "skipped", message="; ".join(grade.reasons))
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _summary(counts: Counter[str]) -> str:
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
