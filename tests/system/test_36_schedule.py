"""The daily schedule itself (issue 12): a notifier whose BULLETIN_CRON falls due within a
minute starts the day's run on its own, and a notifier started after the scheduled time but
before the deadline catches the day up. The notifier has no test clock: the schedule is set
from the real one, in the stack's zone (never within 15 minutes of its midnight)."""

import datetime
import zoneinfo

from test_16_notifier import (feed_env, fresh_notifier_tables, get_bulletin,  # noqa: F401
                              notifier_stack, wait_bulletin)

from conftest import wait_for


def local_now(stack):
    return datetime.datetime.now(zoneinfo.ZoneInfo(stack.bulletin_tz()))


def cron_at(t):
    return f"{t.minute} {t.hour} * * *"


def test_the_run_starts_on_its_own_when_due(stack):
    now = local_now(stack)
    # the next whole minute, unless it is too close for the notifier to start before it
    due = (now + datetime.timedelta(minutes=1 if now.second < 45 else 2)).replace(
        second=0, microsecond=0)
    s = notifier_stack(stack, BULLETIN_CRON=cron_at(due), BULLETIN_DEADLINE="10m")
    assert s.day == due.date().isoformat()
    # nothing before the time: the run is the schedule's, not a catch-up at start
    assert get_bulletin(s.notifier, s.day) is None
    wait_for(lambda: "next_run=" in s.notifier.log(), 5, "the start line")
    due_ms = int(due.timestamp() * 1000)
    assert f"next_run={due_ms}" in s.notifier.log()
    left = (due - local_now(stack)).total_seconds()
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", left + 30,
                      "the scheduled run")
    assert b["trigger"] == "schedule", b
    started = datetime.datetime.fromisoformat(b["scheduled_at"].replace("Z", "+00:00"))
    assert int(started.timestamp() * 1000) == due_ms, b
    assert local_now(stack) >= due
    assert f"bulletin_scheduled_run run_at={due_ms} new=yes" in s.notifier.log()


def test_a_notifier_started_late_catches_the_day_up(stack):
    now = local_now(stack)
    past = (now - datetime.timedelta(minutes=2)).replace(second=0, microsecond=0)
    s = notifier_stack(stack, BULLETIN_CRON=cron_at(past), BULLETIN_DEADLINE="30m")
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 20, "the catch-up run")
    assert b["trigger"] == "schedule", b
    started = datetime.datetime.fromisoformat(b["scheduled_at"].replace("Z", "+00:00"))
    assert int(started.timestamp() * 1000) == int(past.timestamp() * 1000), b
    assert "bulletin_catch_up" in s.notifier.log()
