"""When an identity is expected to run: the expected times of a `Timetable` around a moment. Pure.

Cron is evaluated by cronsim in the timetable's time zone, as cron itself does across daylight-saving
changes: a daily time that falls in the hour skipped in spring runs at the jump (it is not dropped), one in
the hour repeated in autumn runs once (it is not doubled); expressions firing more often than hourly keep
firing by the wall clock through both. `every_seconds` counts real seconds from the Unix epoch.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronsim import CronSim

from sigma_exporter.config.model import Timetable


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def previous(timetable: Timetable, moment: float) -> float:
    """The latest expected time at or before `moment`."""
    if timetable.every_seconds is not None:
        period = timetable.every_seconds
        return math.floor(moment / period) * period
    assert timetable.cron is not None
    # cronsim looks strictly before a whole second: start one second after `moment`'s second.
    start = datetime.fromtimestamp(math.floor(moment) + 1, _zone(timetable.timezone))
    return next(CronSim(timetable.cron, start, reverse=True)).timestamp()


def following(timetable: Timetable, moment: float) -> float:
    """The first expected time strictly after `moment`."""
    if timetable.every_seconds is not None:
        period = timetable.every_seconds
        return (math.floor(moment / period) + 1) * period
    assert timetable.cron is not None
    start = datetime.fromtimestamp(math.floor(moment), _zone(timetable.timezone))
    return next(CronSim(timetable.cron, start)).timestamp()


def between(timetable: Timetable, after: float, until: float, limit: int) -> list[float]:
    """Expected times in (after, until], oldest first, at most `limit` of them (the oldest)."""
    times: list[float] = []
    moment = after
    while len(times) < limit:
        moment = following(timetable, moment)
        if moment > until:
            break
        times.append(moment)
    return times
