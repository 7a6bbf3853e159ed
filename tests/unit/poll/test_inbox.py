"""The reload inbox: a reload loads on the caller's thread; the poll thread takes the config and the
outcome; a failed reload leaves an earlier good one queued; `wait_applied` waits for the poll thread."""

from __future__ import annotations

import threading
from pathlib import Path

from sigma_exporter.config.load import Config, ConfigError
from sigma_exporter.poll.inbox import ReloadInbox
from tests.support.factories import config


def failing() -> Config:
    raise ConfigError("unit.yml", "poll.interval_seconds", "should be a number")


def test_a_good_reload_queues_its_config_and_wakes_the_poll_thread() -> None:
    wake = threading.Event()
    inbox = ReloadInbox(wake, clock=lambda: 42.0)
    new = config(poll={"interval_seconds": 7})
    assert inbox.load(lambda: new) == (True, "")
    assert wake.is_set()
    taken, outcome = inbox.take()
    assert taken is new
    assert outcome is not None and outcome.ok and outcome.at == 42.0
    assert inbox.take() == (None, None)  # taken once


def test_a_failed_reload_keeps_the_good_one_queued_before_it_and_says_why() -> None:
    inbox = ReloadInbox(threading.Event())
    good = config()
    inbox.load(lambda: good)
    ok, error = inbox.load(failing)
    assert not ok and "poll.interval_seconds" in error
    taken, outcome = inbox.take()
    assert taken is good
    assert outcome is not None and not outcome.ok and "should be a number" in outcome.error


def test_an_invalid_reference_file_fails_the_reload(tmp_path: Path) -> None:
    bad = tmp_path / "refs.yml"
    bad.write_text("reports: {not: a list}\n")
    inbox = ReloadInbox(threading.Event())
    ok, error = inbox.load(lambda: config(references={"files": [str(bad)]}))
    assert not ok and str(bad) in error
    assert inbox.take()[0] is None


def test_wait_applied_waits_until_the_poll_thread_is_done() -> None:
    inbox = ReloadInbox(threading.Event())
    assert inbox.wait_applied(0)  # nothing queued
    inbox.load(config)
    assert not inbox.wait_applied(0.01)
    inbox.take()
    inbox.done()
    assert inbox.wait_applied(0)
