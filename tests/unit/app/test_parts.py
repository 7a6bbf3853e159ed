"""Parts start in order and stop in reverse; a part that cannot start stops those before it; a stop shares
its time among the parts and a part that fails to stop does not keep the others up."""

from __future__ import annotations

import time

import pytest

from sigma_exporter.parts import Parts, running


class Recorder:
    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        fail_start: bool = False,
        fail_stop: bool = False,
        slow: float = 0.0,
    ) -> None:
        self.name, self.log = name, log
        self.fail_start, self.fail_stop, self.slow = fail_start, fail_stop, slow
        self.timeouts: list[float] = []

    def start(self) -> None:
        if self.fail_start:
            raise OSError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    def stop(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        time.sleep(min(self.slow, timeout))
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


def test_start_in_order_stop_in_reverse() -> None:
    log: list[str] = []
    parts = Parts([Recorder(n, log) for n in ("store", "writer", "web")])
    parts.start()
    parts.stop(1.0)
    assert log == ["start store", "start writer", "start web", "stop web", "stop writer", "stop store"]
    parts.stop(1.0)  # a second stop stops nothing twice
    assert len(log) == 6


def test_a_part_that_cannot_start_stops_those_started_and_raises() -> None:
    log: list[str] = []
    parts = Parts([Recorder("store", log), Recorder("writer", log), Recorder("web", log, fail_start=True)])
    with pytest.raises(OSError, match="web cannot start"):
        parts.start()
    assert log == ["start store", "start writer", "stop writer", "stop store"]


def test_each_part_gets_a_fair_share_of_what_is_left() -> None:
    log: list[str] = []
    slow, fast = Recorder("slow", log, slow=10.0), Recorder("fast", log)
    parts = Parts([fast, slow])  # slow stops first
    parts.start()
    begun = time.monotonic()
    parts.stop(0.4)
    assert time.monotonic() - begun < 0.5
    assert slow.timeouts[0] == pytest.approx(0.2, abs=0.05)  # half of it: one more part to go
    assert fast.timeouts[0] == pytest.approx(0.2, abs=0.05)  # what the slow one left


def test_a_part_failing_to_stop_does_not_keep_the_others_up() -> None:
    log: list[str] = []
    with running([Recorder("store", log), Recorder("web", log, fail_stop=True)]):
        pass
    assert log[-2:] == ["stop web", "stop store"]
