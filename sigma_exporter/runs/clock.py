"""The exporter's one wall clock for runs and expectations, with the monotonic clock beside it.

Registration stamps, check times, retention and the judging of expected times read `Clock.time()`; durations
the exporter saw from end to end are measured on `Clock.monotonic()`, which no step of the wall clock moves.
Every read of the wall clock compares how far it moved with how far the monotonic clock moved: a difference
over `STEP_TOLERANCE_SECONDS` (plus a slewing NTP's drift) is a step. A step is logged once ("wall clock
stepped") and numbered, so that the expectations' judge can count the expected times a forward step jumped
over as at most one missed run (runs/holdings.py).

Testing hook, off unless `CLOCK_OFFSET_ENV` names a file: the file holds a number of seconds (`3600`,
`-3600.5`) added to the system's wall clock, re-read at most every `OFFSET_REREAD_SECONDS`; a missing or empty
file is 0. It lets a test step the wall clock of a real `serve` process without privileges and without
libfaketime (whose Debian 12 build breaks `time.sleep` and waits on Python 3.11). It never touches the
system clock; the exporter warns at start that it is on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

#: The environment variable naming the offset file of the testing hook (never set it in production).
CLOCK_OFFSET_ENV: Final = "SIGMA_EXPORTER_TESTING_CLOCK_OFFSET_FILE"
#: A change of (wall - monotonic) between two reads larger than this is a step, not drift.
STEP_TOLERANCE_SECONDS: Final = 1.0
#: What a slewing NTP may add per second between two reads (500 ppm is its limit; twice that to be safe).
DRIFT_PER_SECOND: Final = 0.001
OFFSET_REREAD_SECONDS: Final = 0.1


@dataclass(frozen=True)
class Step:
    """A step of the wall clock: its number (1 for the first this process saw) and size (forward > 0)."""

    number: int
    seconds: float


class Clock:
    """The wall clock (with the testing hook's offset, when on) and the monotonic clock. Any thread may
    read it; app.py builds one and hands it to every part that stamps or judges runs."""

    def __init__(
        self,
        offset_file: str | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.offset_file = offset_file
        self._wall = wall
        self._mono = mono
        self._lock = threading.Lock()
        self._offset = 0.0
        self._offset_text = ""
        self._read_at = -float("inf")
        self._last: tuple[float, float, float] | None = None  # monotonic, wall - monotonic, slack: last read
        self._step: Step | None = None

    def monotonic(self) -> float:
        """Seconds on the monotonic clock: only differences mean anything, and only within this process."""
        return self._mono()

    def time(self) -> float:
        """Unix time now, as the exporter sees it; notices (and logs) a step since the last read."""
        before = self._mono()
        wall = self._wall()
        mono = self._mono()  # the thread may have been held up between the reads: no step in that
        with self._lock:
            if self.offset_file is not None and mono - self._read_at >= OFFSET_REREAD_SECONDS:
                self._read_offset(mono)
            wall += self._offset
            step = self._notice(mono, wall - mono, mono - before)
        if step is not None:
            log.warning(
                "wall clock stepped; durations of runs seen from start to end are measured on the monotonic "
                "clock, and expected times a forward step jumped over count as at most one missed run",
                extra={"step_seconds": round(step.seconds, 3), "direction": _direction(step)},
            )
        return wall

    def last_step(self) -> Step | None:
        """The latest step seen so far, None before any."""
        with self._lock:
            return self._step

    def _notice(self, mono: float, skew: float, slack: float) -> Step | None:
        last = self._last
        if last is None or slack <= STEP_TOLERANCE_SECONDS / 2:  # a read held up long is no reference
            self._last = (mono, skew, slack)
        if last is None:
            return None
        moved = skew - last[1]
        if abs(moved) <= STEP_TOLERANCE_SECONDS + DRIFT_PER_SECOND * abs(mono - last[0]) + slack + last[2]:
            return None
        self._last = (mono, skew, slack)
        self._step = Step((self._step.number if self._step else 0) + 1, moved)
        return self._step

    def _read_offset(self, mono: float) -> None:
        self._read_at = mono
        assert self.offset_file is not None
        try:
            with open(self.offset_file, encoding="utf-8") as handle:
                text = handle.read(64).strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            text = f"unreadable: {exc}"
        if text == self._offset_text:
            return
        self._offset_text = text
        try:
            self._offset = float(text) if text else 0.0
        except ValueError:
            log.warning(
                "testing clock offset file holds no number; offset unchanged",
                extra={"file": self.offset_file, "content": text[:64]},
            )


def _direction(step: Step) -> str:
    return "forward" if step.seconds > 0 else "backward"


def clock_from_environment(environ: Mapping[str, str]) -> Clock:
    """The system's clock, or with `CLOCK_OFFSET_ENV` set the testing hook's (and a warning saying so)."""
    path = environ.get(CLOCK_OFFSET_ENV) or None
    if path is not None:
        log.warning(
            "testing hook on: the wall clock is offset by the seconds in a file; never set this in production",
            extra={"variable": CLOCK_OFFSET_ENV, "file": path},
        )
    return Clock(path)
