"""Task files on disk: safe names, the suite that includes them, and loading them back."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from waza.errors import WazaError
from waza.tasks.waza_format import eval_problems, task_problems

SUITE_FILE = "eval.yaml"
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


def task_schema() -> dict[str, Any]:
    """The JSON Schema of the waza task format, as shipped with waza."""
    return json.loads(resources.files("waza.tasks").joinpath("task.schema.json").read_text("utf-8"))


def validate_task(task: Any) -> list[str]:
    """What is wrong with a task, one message per place; empty when it is valid."""
    validator = jsonschema.Draft202012Validator(task_schema())
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(task)'}: {error.message}"
        for error in sorted(validator.iter_errors(task), key=lambda e: list(e.absolute_path))
    ]


def write_suite(
    tasks: list[dict[str, Any]], folder: Path, *, name: str, skill: str | None, force: bool = False
) -> list[Path]:
    """Write a YAML file per task and ``eval.yaml`` including them; overwrite nothing unless ``force``.

    Every task is checked against the format first: what is written is what the runner loads.
    """
    for task in tasks:
        problems = validate_task(task)
        if problems:
            raise WazaError(f"task {task.get('id')!r} would not be a valid waza task: {problems[0]}")
    files = [folder / task_filename(task["id"]) for task in tasks]
    suite = folder / SUITE_FILE
    if not force:
        taken = next((path for path in [*files, suite] if path.exists()), None)
        if taken is not None:
            raise WazaError(f"{taken} exists; pass --force to overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    for task, path in zip(tasks, files, strict=True):
        path.write_text(_dump(task), encoding="utf-8")
    document = {
        "name": name,
        "skill": skill,
        "tasks": [{"include": path.name} for path in files],
        "graders": [{"type": "expectations", "name": "runtime-behaviour"}],
    }
    suite.write_text(_dump(document), encoding="utf-8")
    return [*files, suite]


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Tasks from a suite file, a task file, or a folder holding ``eval.yaml`` or task files."""
    if path.is_dir():
        suite = path / SUITE_FILE
        if suite.exists():
            return load_tasks(suite)
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
    tasks = []
    for task_path in found:
        if task_path.resolve() == path.resolve() or not task_path.is_file():
            continue
        task = _load(task_path)
        tasks.append(task | {"graders": [*suite_graders, *(task.get("graders") or [])]})
    return tasks


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
    if problems and validate_task(task):
        raise WazaError(f"{path}: not a waza task: {problems[0]}")
    return task


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
