"""The exporter's wall clock: a step is told from drift by the monotonic clock, numbered and logged once; the
testing hook's offset file steps the wall clock and is off unless its variable is set."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sigma_exporter.runs.clock import CLOCK_OFFSET_ENV, OFFSET_REREAD_SECONDS, Clock, clock_from_environment


class Hands:
    """A wall clock and a monotonic clock that a test moves."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 5_000.0

    def tick(self, seconds: float, *, wall_extra: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + wall_extra


def clock_of(hands: Hands, offset_file: str | None = None) -> Clock:
    return Clock(offset_file, wall=lambda: hands.wall, mono=lambda: hands.mono)


def steps_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("wall clock stepped")]


def test_a_step_is_numbered_and_logged_once_in_each_direction(caplog: pytest.LogCaptureFixture) -> None:
    hands = Hands()
    clock = clock_of(hands)
    assert clock.time() == hands.wall and clock.last_step() is None
    hands.tick(5)
    clock.time()
    assert clock.last_step() is None and not steps_logged(caplog)
    hands.tick(1, wall_extra=3600)
    assert clock.time() == hands.wall
    step = clock.last_step()
    assert step is not None and step.number == 1 and step.seconds == pytest.approx(3600)
    clock.time()  # the next read: no new step
    assert clock.last_step() == step
    hands.tick(1, wall_extra=-3600)
    clock.time()
    back = clock.last_step()
    assert back is not None and back.number == 2 and back.seconds == pytest.approx(-3600)
    logged = steps_logged(caplog)
    assert [r.__dict__["direction"] for r in logged] == ["forward", "backward"]
    assert [r.__dict__["step_seconds"] for r in logged] == [3600.0, -3600.0]


def test_slewing_drift_and_small_jitter_are_not_steps() -> None:
    hands = Hands()
    clock = clock_of(hands)
    clock.time()
    hands.tick(1000, wall_extra=0.5 + 1.0)  # 0.5 s of slew over 1000 s, plus a jitter of a second
    clock.time()
    hands.tick(0.2, wall_extra=0.9)
    clock.time()
    assert clock.last_step() is None
    hands.tick(0.2, wall_extra=1.5)
    clock.time()
    assert clock.last_step() is not None


def test_the_monotonic_clock_is_never_offset(tmp_path: Path) -> None:
    hands = Hands()
    offset = tmp_path / "offset"
    offset.write_text("3600\n")
    clock = clock_of(hands, str(offset))
    assert clock.monotonic() == hands.mono
    assert clock.time() == hands.wall + 3600
    assert clock.monotonic() == hands.mono


def test_the_offset_file_steps_the_wall_clock_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hands = Hands()
    offset = tmp_path / "offset"
    clock = clock_of(hands, str(offset))
    assert clock.time() == hands.wall  # no file yet: no offset
    offset.write_text("3600")
    hands.tick(OFFSET_REREAD_SECONDS / 2)
    assert clock.time() == hands.wall  # not re-read yet
    hands.tick(OFFSET_REREAD_SECONDS)
    assert clock.time() == hands.wall + 3600
    assert clock.last_step() is not None and clock.last_step().number == 1  # type: ignore[union-attr]
    offset.write_text("not a number")
    hands.tick(OFFSET_REREAD_SECONDS)
    assert clock.time() == hands.wall + 3600  # unchanged, and said so
    assert any("holds no number" in r.getMessage() for r in caplog.records)
    offset.write_text("-0.5")
    hands.tick(OFFSET_REREAD_SECONDS)
    assert clock.time() == hands.wall - 0.5
    back = clock.last_step()
    assert back is not None and back.number == 2 and back.seconds == pytest.approx(-3600.5)
    offset.unlink()
    hands.tick(OFFSET_REREAD_SECONDS)
    assert clock.time() == hands.wall


def test_the_hook_is_off_unless_its_variable_is_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert clock_from_environment({}).offset_file is None
    assert clock_from_environment({CLOCK_OFFSET_ENV: ""}).offset_file is None
    assert not caplog.records
    path = str(tmp_path / "offset")
    assert clock_from_environment({CLOCK_OFFSET_ENV: path}).offset_file == path
    assert any("never set this in production" in r.getMessage() for r in caplog.records)


def test_a_read_held_up_between_the_two_clocks_is_not_a_step() -> None:
    hands = Hands()
    monos = iter(
        [hands.mono, hands.mono, hands.mono + 10, hands.mono + 12.5, hands.mono + 20, hands.mono + 20]
    )
    clock = Clock(wall=lambda: hands.wall, mono=lambda: next(monos))
    clock.time()
    hands.wall += 10  # the wall clock read, then 2.5 s before the monotonic one is
    clock.time()
    assert clock.last_step() is None
    hands.wall += 5  # the next read, not held up: the wall clock is 5 s short of the monotonic clock
    clock.time()
    step = clock.last_step()
    assert step is not None and step.seconds == pytest.approx(-5)
