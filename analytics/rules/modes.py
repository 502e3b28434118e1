"""The maintenance and away modes at a worker's start: the community's modes hash rebuilt from SQL
(registry/modes.py), and the timers that resume an away elder's watch planned again, so that a lost
or flushed Redis forgets no mode. The modes themselves act in ``RuleContext.alert`` (silencing) and
in the elder rules (resuming)."""

from __future__ import annotations

from analytics.context import RuleContext
from analytics.rules.base import Rule
from core.timefmt import ms_to_utc
from registry.modes import AWAY, AWAY_RESUME_TIMERS, live_periods, project_all_modes


class Modes(Rule):
    """Raises nothing: keeps the modes where the worker looks."""

    name = "modes"

    def on_start(self, ctx: RuleContext) -> None:
        """Rebuild the modes hash from SQL; plan the resume of every live away period (never moved)."""
        now = ms_to_utc(ctx.now())
        with ctx.directory.sessions() as session:
            project_all_modes(ctx.redis, ctx.keys, session, ctx.community, now)
            away = [(p.subject, p.end_ms()) for p in live_periods(session, ctx.community, AWAY, now)]
        for person, end in away:
            for timer in AWAY_RESUME_TIMERS:
                ctx.schedule(timer, person, end, only_new=True)
