"""When reconciliation runs: hourly, daily or weekly at HH:MM (UTC), as a cron trigger."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from apscheduler.triggers.cron import CronTrigger

INTERVALS = ("hourly", "daily", "weekly")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIMEZONE = "UTC"
HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True)
class Schedule:
    """[schedule]: hourly runs at the minute of `time`; daily at `time`; weekly on `day`
    at `time`."""

    interval: str = "daily"
    time: str = "02:00"
    day: str = "mon"

    def check(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"interval: one of {', '.join(INTERVALS)}")
        if not HH_MM.fullmatch(self.time):
            raise ValueError("time: HH:MM, from 00:00 to 23:59")
        if self.day not in DAYS:
            raise ValueError(f"day: one of {', '.join(DAYS)}")

    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time.split(":")
        return int(hour), int(minute)


def trigger(schedule: Schedule) -> CronTrigger:
    hour, minute = schedule.hour_minute()
    if schedule.interval == "hourly":
        return CronTrigger(minute=minute, timezone=TIMEZONE)
    if schedule.interval == "daily":
        return CronTrigger(hour=hour, minute=minute, timezone=TIMEZONE)
    return CronTrigger(day_of_week=schedule.day, hour=hour, minute=minute, timezone=TIMEZONE)


def next_run(schedule: Schedule, now: datetime) -> datetime:
    """The first run at or after `now` (an aware datetime)."""
    fire = trigger(schedule).get_next_fire_time(None, now)
    assert fire is not None  # a cron trigger without an end date always fires again
    return fire  # type: ignore[no-any-return]
