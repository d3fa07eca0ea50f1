"""Is a skill breaking now? The latest window of sessions against the baseline before it, per skill.

Two checks per skill: the success rate dropped, and the p95 duration rose. A
check fires only when both hold:

- the change is significant in a one-sided test (two proportions for the
  success rate, the quantile test at p95 for durations), at ``alpha`` shared
  by all checks of a run (Bonferroni), so a run over healthy skills fires
  with probability at most ``alpha``;
- the change seen is at least half the change the rule is built to catch
  (``max_drop``, ``max_p95_increase``), so that on large samples a certain
  but harmless wobble never pages anyone.

Skills with fewer than ``min_sessions`` completed sessions in the window or
in the baseline are not checked: small samples never fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from waza.compare import stats
from waza.compare.outcomes import Outcome

NO_SKILL = "(no skill)"


@dataclass(frozen=True)
class Rule:
    window: timedelta
    baseline: timedelta
    min_sessions: int = 100
    max_drop: float = 0.03  # of the success rate, as a fraction (3 points)
    max_p95_increase: float = 0.20  # relative
    alpha: float = 0.005

    def spans(self, now: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
        """(start, end) of the baseline and of the window ending at ``now``."""
        start = now - self.window
        return (start - self.baseline, start), (start, now)


@dataclass
class Finding:
    """One check of one skill."""

    skill: str
    check: str  # "success_rate" or "p95_duration_ms"; "sessions" when the skill was not checked
    firing: bool
    message: str

    @property
    def key(self) -> str:
        return f"{self.skill}|{self.check}"


def evaluate(baseline: list[Outcome], window: list[Outcome], rule: Rule) -> list[Finding]:
    """Every check of every skill seen in the window or the baseline, in skill order."""
    skills = sorted({_skill(o) for o in baseline + window})
    sides = {skill: ([o for o in baseline if _skill(o) == skill], [o for o in window if _skill(o) == skill])
             for skill in skills}  # fmt: skip
    checked = [s for s in skills if min(len(sides[s][0]), len(sides[s][1])) >= rule.min_sessions]
    level = rule.alpha / (2 * len(checked)) if checked else rule.alpha
    findings = []
    for skill in skills:
        before, after = sides[skill]
        if skill in checked:
            findings += [_success(skill, before, after, rule, level), _p95(skill, before, after, rule, level)]
        else:
            findings.append(
                Finding(
                    skill,
                    "sessions",
                    False,
                    f"{skill}: not checked: {len(after):,} sessions in the window and {len(before):,}"
                    f" in the baseline, fewer than --min-sessions {rule.min_sessions:,}",
                )
            )
    return findings


def _success(skill: str, before: list[Outcome], after: list[Outcome], rule: Rule, level: float) -> Finding:
    wins = sum(o.success for o in before), sum(o.success for o in after)
    was, now = wins[0] / len(before), wins[1] / len(after)
    p = stats.p_value(stats.two_proportions(wins[0], len(before), wins[1], len(after)), sided="less")
    firing = p < level and was - now >= rule.max_drop / 2
    verdict = f"down {100 * (was - now):.1f} points" if firing else "healthy"
    return Finding(
        skill,
        "success_rate",
        firing,
        f"{skill}: success rate {verdict}: {now:.1%} of {len(after):,} sessions in the window,"
        f" {was:.1%} of {len(before):,} in the baseline (p = {p:.2g})",
    )


def _p95(skill: str, before: list[Outcome], after: list[Outcome], rule: Rule, level: float) -> Finding:
    durations = [sorted(o.duration_ms for o in side if o.duration_ms is not None) for side in (before, after)]
    was, now = (stats.quantile(side, 0.95) for side in durations)
    if was is None or now is None:
        return Finding(skill, "p95_duration_ms", False, f"{skill}: p95 duration: no timed sessions")
    p = stats.p_value(stats.quantile_test(*durations, 0.95), sided="greater")
    rise = (now - was) / was if was else 0.0
    firing = p < level and rise >= rule.max_p95_increase / 2
    verdict = f"up {rise:.0%}" if firing else "healthy"
    return Finding(
        skill,
        "p95_duration_ms",
        firing,
        f"{skill}: p95 duration {verdict}: {now:,.0f} ms in the window, {was:,.0f} ms in the baseline"
        f" (p = {p:.2g})",
    )


def _skill(outcome: Outcome) -> str:
    return outcome.skill if outcome.skill is not None else NO_SKILL
