"""Which sessions become tasks: all, a random sample, or the interesting ones.

Interesting selection ranks sessions by what makes a good regression test (a
failure, a slow outlier for its skill, a rare sequence of tools, a rare
skill), breaks ties in an order fixed by the seed, and keeps one session of
each group of near-duplicate prompts: prompts are normalised (lower case,
every number a 0, punctuation dropped) and compared by MinHash over word
3-grams; two prompts whose estimated Jaccard similarity reaches
``NEAR_DUPLICATE`` are near-duplicates.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from waza.model import SessionTelemetry

MODES = ("all", "interesting", "random")
NEAR_DUPLICATE = 0.8
PERMUTATIONS = 128
RARE_SHARE = 0.05  # a skill or tool sequence seen in at most this share of sessions is rare
SLOW_PERCENTILE = 0.95
MIN_FOR_SLOW = 20  # sessions of a skill below which none is called slow


@dataclass
class Pick:
    session: SessionTelemetry
    reasons: list[str] = field(default_factory=list)


@dataclass
class Selection:
    picked: list[Pick]
    duplicates: dict[str, str]  # dropped session id -> the picked session it repeats (among those ranked)


def select(sessions: list[SessionTelemetry], mode: str, limit: int | None, seed: int) -> Selection:
    """The sessions to turn into tasks, in a stable order for a given seed."""
    if mode not in MODES:
        raise ValueError(f"select must be one of {', '.join(MODES)}, not {mode!r}")
    rng = random.Random(seed)
    if mode == "all":
        chosen = sessions[:limit] if limit is not None else sessions
        return Selection([Pick(s, ["all sessions"]) for s in chosen], {})
    if mode == "random":
        count = len(sessions) if limit is None else min(limit, len(sessions))
        chosen = sorted(rng.sample(range(len(sessions)), count))
        return Selection([Pick(sessions[i], [f"picked at random (seed {seed})"]) for i in chosen], {})
    return _interesting(sessions, limit, rng)


def _interesting(sessions: list[SessionTelemetry], limit: int | None, rng: random.Random) -> Selection:
    reasons = _reasons(sessions)
    order = list(range(len(sessions)))
    rng.shuffle(order)
    order.sort(key=lambda i: -sum(weight for weight, _ in reasons[i]))  # stable: ties keep the seed's order
    prompts = NearDuplicates()
    picked: list[Pick] = []
    for i in order:
        session = sessions[i]
        if prompts.repeats(session.session_id, session.prompt):
            continue
        if limit is not None and len(picked) >= limit:
            break
        prompts.keep(session.session_id, session.prompt)
        picked.append(Pick(session, [text for _, text in reasons[i]] or ["an ordinary session"]))
    return Selection(picked, prompts.duplicates)


class NearDuplicates:
    """Prompts already kept, to tell whether another one repeats one of them."""

    def __init__(self) -> None:
        # Imported here, as it takes most of a second that other commands should not pay.
        from datasketch import MinHashLSH

        self._index = MinHashLSH(threshold=NEAR_DUPLICATE, num_perm=PERMUTATIONS)
        self._kept: dict[str, str] = {}  # normalised prompt -> kept session id
        self._pending: tuple[str, Any] | None = None
        self.duplicates: dict[str, str] = {}  # dropped session id -> the kept session it repeats

    def repeats(self, session_id: str, prompt: str) -> bool:
        text = normalise(prompt)
        same = self._kept.get(text)  # the same words: no signature needed
        signature = None
        if same is None:
            signature = _signature(text)
            same = next(iter(self._index.query(signature)), None)
        if same is not None:
            self.duplicates[session_id] = same
            return True
        self._pending = (text, signature)
        return False

    def keep(self, session_id: str, prompt: str) -> None:
        """Keep the prompt ``repeats`` was last asked about (and found new)."""
        text, signature = self._pending if self._pending else (normalise(prompt), None)
        self._kept[text] = session_id
        self._index.insert(session_id, signature if signature is not None else _signature(text))
        self._pending = None


def normalise(prompt: str) -> str:
    """The prompt as near-duplicates share it: lower case, numbers as 0, words only."""
    text = re.sub(r"\d+", "0", prompt.lower())
    return " ".join(re.findall(r"\w+", text))


def _signature(text: str) -> Any:
    from datasketch import MinHash

    words = text.split()
    grams = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
    signature = MinHash(num_perm=PERMUTATIONS, seed=1)
    for gram in grams:
        signature.update(gram.encode())
    return signature


def _reasons(sessions: list[SessionTelemetry]) -> list[list[tuple[int, str]]]:
    """Why each session is worth a test, each reason with its weight."""
    total = len(sessions) or 1
    skills = Counter(s.skill_name for s in sessions)
    sequences = Counter(_tool_sequence(s) for s in sessions)
    slow = _slow_limits(sessions)
    return [
        reasons_for(
            failed=s.completed and not s.success,
            error=s.error,
            skill=s.skill_name,
            duration_ms=s.duration_ms if s.completed else None,
            slow_limit=slow.get(s.skill_name),
            sequence=_tool_sequence(s),
            same_sequence=sequences[_tool_sequence(s)],
            same_skill=skills[s.skill_name],
            total=total,
        )
        for s in sessions
    ]


def reasons_for(
    *,
    failed: bool,
    error: str | None,
    skill: str | None,
    duration_ms: int | None,
    slow_limit: float | None,
    sequence: tuple[str, ...],
    same_sequence: int,
    same_skill: int,
    total: int,
) -> list[tuple[int, str]]:
    """Why a session is worth a test, each reason with its weight (the engine ranks by the same)."""
    mine: list[tuple[int, str]] = []
    if failed:
        mine.append((8, f"failed: {error or 'no error message'}"))
    if duration_ms is not None and slow_limit is not None and duration_ms > slow_limit:
        mine.append((4, f"slow: {duration_ms:,} ms, above p95 {slow_limit:,.0f} ms of its skill"))
    if sequence and same_sequence <= max(2, RARE_SHARE * total):
        mine.append((2, f"rare tool sequence: {' > '.join(sequence)} ({_sessions(same_sequence)})"))
    if same_skill <= RARE_SHARE * total:
        mine.append((1, f"rare skill: {skill} ({_sessions(same_skill)})"))
    return mine


def _sessions(count: int) -> str:
    return f"{count:,} session" + ("" if count == 1 else "s")


def _tool_sequence(session: SessionTelemetry) -> tuple[str, ...]:
    return tuple(str(call.get("tool")) for call in session.tool_calls)


def _slow_limits(sessions: list[SessionTelemetry]) -> dict[str | None, float]:
    """The p95 duration of each skill's completed sessions (linear interpolation)."""
    durations: dict[str | None, list[int]] = {}
    for session in sessions:
        if session.completed:
            durations.setdefault(session.skill_name, []).append(session.duration_ms)
    limits = {}
    for skill, values in durations.items():
        if len(values) >= MIN_FOR_SLOW:  # fewer sessions say nothing about outliers
            values.sort()
            rank = (len(values) - 1) * SLOW_PERCENTILE
            low = int(rank)
            high = min(low + 1, len(values) - 1)
            limits[skill] = values[low] + (values[high] - values[low]) * (rank - low)
    return limits
