"""Which runs a cycle checks. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sigma_exporter.runs.held import HeldRun, Key


def select(
    due: Sequence[Key],
    runs: Mapping[Key, HeldRun],
    *,
    full: bool,
    recheck_seconds: float,
    mono_now: float,
) -> list[HeldRun]:
    """The runs to check now, earliest due first. `due` are the keys whose due time has come (new runs
    among them). A full cycle also takes every run that is not final, and every final one whose last good
    check is `recheck_seconds` old. When a full cycle would check nothing but runs are held, it checks the
    least recently checked one, so that sigma_up keeps telling whether Sigma answers."""
    keys = list(due)
    if full:
        taken = set(keys)
        keys += [
            key
            for key, run in runs.items()
            if key not in taken
            and (not run.final or run.last_success is None or mono_now - run.last_success >= recheck_seconds)
        ]
    chosen = [runs[key] for key in keys if key in runs]
    if not chosen and runs and full:
        chosen = [min(runs.values(), key=lambda run: run.last_check or 0.0)]
    return chosen
