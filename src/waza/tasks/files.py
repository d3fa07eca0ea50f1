"""Task files on disk: safe names, the suite that includes them, and loading them back."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from waza.errors import WazaError
from waza.tasks.mocks import MCP_CALLS, MOCK_SCHEMA_VERSION, mcp_mocks
from waza.tasks.waza_format import eval_problems, task_problems

SUITE_FILE = "eval.yaml"
TASKS_FOLDER = "tasks"
# Beside eval.yaml: where each task came from, which waza's task format has no place for.
PROVENANCE_FILE = "provenance.yaml"
DEFAULT_MODEL = "gpt-4o"  # for a suite whose sessions named no model
TIMEOUT_SECONDS = 300
MAX_STEM = 60
# Keys a task may carry that the format leaves to other tools: read, not graded.
# ``captured`` is what ``to_eval_input`` records of the session a task came from.
READ_ONLY_KEYS = ("captured",)


def task_filename(task_id: str) -> str:
    """A file name for a task, safe on every OS whatever its id holds.

    Only ASCII letters, digits, dot, dash and underscore survive; a digest of the
    whole id keeps ids that differ only in dropped characters apart.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", task_id).strip(".-_")[:MAX_STEM] or "task"
    digest = hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:10]
    return f"{stem}-{digest}.yaml"


def legacy_problems(task: Any) -> list[str]:
    """What is wrong with a task in the format earlier versions of ``waza convert`` wrote
    (``task.schema.json``: provenance and review inside the task, an ``expectations`` grader)."""
    schema = json.loads(resources.files("waza.tasks").joinpath("task.schema.json").read_text("utf-8"))
    return [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(task)]


def write_suite(
    converted: list[tuple[dict[str, Any], dict[str, Any]]],
    folder: Path,
    *,
    name: str,
    force: bool = False,
) -> list[Path]:
    """Write tasks with their provenance records as waza suites; overwrite nothing unless ``force``.

    One suite per skill: ``eval.yaml``, ``tasks/*.yaml`` and ``provenance.yaml``
    in ``folder``, or, when the tasks come from several skills, in a folder per
    skill under it. Every file is checked against the waza runner's format first:
    what is written is what ``waza run`` loads.
    """
    by_skill: dict[str | None, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for task, record in converted:
        by_skill.setdefault(record.get("skill"), []).append((task, record))
    plan = []
    for skill, members in by_skill.items():
        home = folder if len(by_skill) == 1 else folder / suite_dirname(skill or name)
        suite = _suite(members, name if len(by_skill) == 1 or skill is None else skill, skill)
        plan.append((home, suite, members))
    for _, suite, members in plan:
        for task, _ in members:
            problems = task_problems(task)
            if problems:
                raise WazaError(f"task {task.get('id')!r} would not be a valid waza task: {problems[0]}")
        problems = eval_problems(suite)
        if problems:
            raise WazaError(f"{suite['name']!r} would not be a valid waza eval: {problems[0]}")
    files = [
        (home / TASKS_FOLDER / task_filename(task["id"]), task)
        for home, _, members in plan
        for task, _ in members
    ]
    suites = [home / SUITE_FILE for home, _, _ in plan]
    if not force:
        taken = next((path for path in [*(p for p, _ in files), *suites] if path.exists()), None)
        if taken is not None:
            raise WazaError(f"{taken} exists; pass --force to overwrite")
    for path, task in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(task), encoding="utf-8")
    for home, suite, members in plan:
        (home / SUITE_FILE).write_text(_dump(suite), encoding="utf-8")
        records = {"tasks": {task["id"]: _without(record, MCP_CALLS) for task, record in members}}
        (home / PROVENANCE_FILE).write_text(_dump(records), encoding="utf-8")
    return [*(path for path, _ in files), *suites]


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


def suite_dirname(skill: str) -> str:
    """A folder name for a skill's suite, safe on every OS (as ``task_filename``)."""
    return task_filename(skill).removesuffix(".yaml")


def _suite(
    members: list[tuple[dict[str, Any], dict[str, Any]]], name: str, skill: str | None
) -> dict[str, Any]:
    """The eval file of a suite: what waza requires, and globs that reach every task file."""
    models = Counter(record["model"] for _, record in members if record.get("model"))
    model = models.most_common(1)[0][0] if models else DEFAULT_MODEL
    servers = mcp_mocks([record[MCP_CALLS] for _, record in members if record.get(MCP_CALLS)])
    suite: dict[str, Any] = {
        "name": name,
        "description": "Production sessions captured by waza telemetry, kept as regression tests. "
        f"Their graders are suggestions drawn from what each session did; {PROVENANCE_FILE} "
        "leads each task back to its session.",
        "skill": skill or name,
    }
    if servers or any("command_mocks" in task for task, _ in members):
        suite["schemaVersion"] = MOCK_SCHEMA_VERSION
    suite |= {
        "config": {"trials_per_task": 1, "timeout_seconds": TIMEOUT_SECONDS, "executor": "copilot-sdk",
                   "model": model},
        "metrics": [{"name": "task_completion", "weight": 1.0, "threshold": 0.8}],
        "tasks": [f"{TASKS_FOLDER}/*.yaml"],
    }  # fmt: skip
    return suite | ({"mcp_mocks": servers} if servers else {})


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Tasks from a suite file, a task file, or a folder holding ``eval.yaml`` or task files."""
    if path.is_dir():
        suite = path / SUITE_FILE
        if suite.exists():
            return load_tasks(suite)
        suites = sorted(path.glob(f"*/{SUITE_FILE}"))  # a suite per skill, as waza convert writes them
        if suites:
            return [task for found in suites for task in load_tasks(found)]
        found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        return [_load(p) for p in found if p.name != SUITE_FILE]
    document = _read(path)
    if isinstance(document, dict) and isinstance(document.get("tasks"), list):
        if all(isinstance(entry, str) for entry in document["tasks"]):
            return _waza_suite(document, path)
        tasks = []
        for entry in document["tasks"]:
            if isinstance(entry, dict) and "include" in entry:
                tasks.append(_load(_included(path.parent, str(entry["include"]))))
            else:
                tasks.append(_checked(entry, path))
        return tasks
    return [_checked(document, path)]


def _waza_suite(document: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The tasks of an eval file in waza's format: its task globs resolved as waza resolves them
    (relative to the eval file, never outside its folder), each task carrying the eval's graders first."""
    problems = eval_problems(document)
    if problems:
        raise WazaError(f"{path}: not a waza eval: {problems[0]}")
    found: dict[Path, None] = {}
    for pattern in document["tasks"]:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise WazaError(f"{path}: task glob {pattern!r} leaves the eval's folder")
        found.update(dict.fromkeys(sorted(path.parent.glob(pattern))))
    suite_graders = list(document.get("graders") or [])
    records = _provenance(path.parent / PROVENANCE_FILE)
    tasks = []
    for task_path in found:
        if task_path.resolve() == path.resolve() or not task_path.is_file():
            continue
        task = _load(task_path)
        task = task | {"graders": [*suite_graders, *(task.get("graders") or [])]}
        if task["id"] in records:  # where it came from, for matching its session and reporting its skill
            task["provenance"] = records[task["id"]]
        tasks.append(task)
    return tasks


def _provenance(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    document = _read(path)
    records = document.get("tasks") if isinstance(document, dict) else None
    if not isinstance(records, dict):
        raise WazaError(f"{path}: expected a mapping of task ids under 'tasks'")
    return {str(task_id): record for task_id, record in records.items() if isinstance(record, dict)}


def _included(folder: Path, name: str) -> Path:
    """A file a suite includes, which must lie in the suite's folder."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise WazaError(f"{folder / SUITE_FILE}: include {name!r} leaves the suite's folder")
    return target


def _load(path: Path) -> dict[str, Any]:
    return _checked(_read(path), path)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise WazaError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None


def _checked(task: Any, path: Path) -> dict[str, Any]:
    """A task as read: valid in the format once the keys it leaves to others are set aside."""
    if isinstance(task, dict):
        task = {key: value for key, value in task.items() if key not in READ_ONLY_KEYS}
    # waza's own format, or the one earlier versions of waza convert wrote.
    problems = task_problems(task)
    if problems and legacy_problems(task):
        raise WazaError(f"{path}: not a waza task: {problems[0]}")
    return task


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
