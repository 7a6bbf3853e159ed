"""Which runs a cycle checks. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sigma_exporter.runs.held import HeldRun, Key


def select(
    due: Sequence[Key], runs: Mapping[Key, HeldRun], *, full: bool, finals_too: bool = False
) -> list[HeldRun]:
    """The runs to check now: the keys whose due time has come (new runs among them), earliest first; a
    full cycle also takes every run that is not final, and with `finals_too` (`final_recheck_seconds: 0`)
    every final one as well; otherwise a final run is checked when its re-check is due, never just because
    a cycle is full."""
    keys = list(due)
    if full:
        taken = set(keys)
        keys += [key for key, run in runs.items() if key not in taken and (finals_too or not run.final)]
    return [runs[key] for key in keys if key in runs]
