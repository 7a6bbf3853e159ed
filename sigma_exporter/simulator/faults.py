"""Faults on `/generate`: RUN_REPORT / EXEC_REPORT_GROUP calls that fail to start a run.

In a scenario they are `faults.generate_faults`, a list of rules tried in order; the first rule that
matches a call and is not spent decides it. A call no rule takes starts its run as usual.

    faults:
      generate_faults:
        - {report_id: rpt-daily, fault: http_500, times: 2}   # the first 2 RUN_REPORT rpt-daily calls
        - {report_group_id: grp-month, fault: failure}        # every EXEC_REPORT_GROUP grp-month call
        - {any: true, fault: timeout, seconds: 5}            # every other start call

Each rule names exactly one target: `report_id` (RUN_REPORT calls for that report), `report_group_id`
(EXEC_REPORT_GROUP calls for that group, from `reportGroupId` or the older `reportId`) or `any: true`
(every RUN_REPORT and EXEC_REPORT_GROUP call). `times: N` (optional): the rule takes the first N calls it
matches, then is spent and later rules, or normal behaviour, answer; without it the rule takes every call.
Rules apply to authorised, well-formed calls only (a bad token still gets 401, a bad action 400). None of
them starts a run. `fault`:

- `http_500`: HTTP 500 with a FAILURE body (statusCode "500", errorCode SIG-500), as status calls get
  under `error_rate`.
- `failure`: HTTP 200 with a FAILURE body: `replyType` FAILURE, `success` "false", `statusCode` "200",
  `errorCode` / `errorMsg` from the rule (defaults below). The API does not document a refused start;
  this is the simulator's choice: Sigma answered, and said no.
- `timeout`: no reply for `seconds` (default 30, at most 300), then the connection is closed without one.
  A client whose timeout is shorter than `seconds` sees a timeout. The wait ends early when the simulator
  stops, so a hanging call never holds up a test's teardown.

Counts of spent calls live in the simulator's state, per rule; setting `generate_faults` again (the
`/_sim/faults` admin call or `Simulator.set_faults`) or resetting the faults starts them from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sigma_exporter.config.walker import Section
from sigma_exporter.sigma.actions import EXEC_REPORT_GROUP, RUN_REPORT

GENERATE_FAULT_KINDS: Final = ("http_500", "failure", "timeout")
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
MAX_TIMEOUT_SECONDS: Final = 300.0
DEFAULT_ERROR_CODE: Final = "SIG-RUN-REFUSED"
DEFAULT_ERROR_MSG: Final = "The report could not be started"


@dataclass(frozen=True)
class GenerateFault:
    """One rule: which start calls it takes (`report_id`, `report_group_id`, or both empty for any call),
    what they get, and how many (None: every one)."""

    fault: str
    report_id: str = ""
    report_group_id: str = ""
    times: int | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS
    error_code: str = DEFAULT_ERROR_CODE
    error_msg: str = DEFAULT_ERROR_MSG

    def matches(self, action: str, ident: str) -> bool:
        """The rule applies to a start call of `action` for `ident`."""
        if self.report_id:
            return action == RUN_REPORT and ident == self.report_id
        if self.report_group_id:
            return action == EXEC_REPORT_GROUP and ident == self.report_group_id
        return action in (RUN_REPORT, EXEC_REPORT_GROUP)

    def as_config(self) -> dict[str, object]:
        """The rule as a scenario entry, so that merging other faults at runtime re-parses it unchanged."""
        entry: dict[str, object] = {"fault": self.fault}
        if self.report_id:
            entry["report_id"] = self.report_id
        elif self.report_group_id:
            entry["report_group_id"] = self.report_group_id
        else:
            entry["any"] = True
        if self.times is not None:
            entry["times"] = self.times
        if self.fault == "timeout":
            entry["seconds"] = self.seconds
        if self.fault == "failure":
            entry["error_code"] = self.error_code
            entry["error_msg"] = self.error_msg
        return entry


def parse_generate_faults(section: Section, name: str) -> tuple[GenerateFault, ...]:
    """The `generate_faults` rules under `name` of a scenario section; each names exactly one of report_id,
    report_group_id or `any: true`, and only the settings of its fault kind."""
    rules = []
    for index, item in enumerate(section.items(name)):
        entry = Section(item, f"{section.key(name)}[{index}]", section.source)
        fault = entry.text("fault", required=True) or ""
        if fault not in GENERATE_FAULT_KINDS:
            raise entry.error("fault", f"should be one of {', '.join(GENERATE_FAULT_KINDS)}, got {fault!r}")
        report_id = entry.text("report_id") or ""
        group_id = entry.text("report_group_id") or ""
        any_call = entry.flag("any", False)
        if entry.data.get("any") is False:
            raise entry.error("any", "should be true when given (name report_id or report_group_id instead)")
        if (bool(report_id) + bool(group_id) + any_call) != 1:
            raise entry.here("needs exactly one of report_id, report_group_id, any: true")
        has_times = entry.data.get("times") is not None
        times = entry.integer("times", 1, minimum=1, maximum=10**9) if has_times else None
        seconds = entry.number("seconds", DEFAULT_TIMEOUT_SECONDS, minimum=0.01, maximum=MAX_TIMEOUT_SECONDS)
        if entry.data.get("seconds") is not None and fault != "timeout":
            raise entry.error("seconds", "only a timeout fault takes seconds")
        error_code = entry.text("error_code", DEFAULT_ERROR_CODE) or ""
        error_msg = entry.text("error_msg", DEFAULT_ERROR_MSG) or ""
        for key in ("error_code", "error_msg"):
            if entry.data.get(key) is not None and fault != "failure":
                raise entry.error(key, "only a failure fault takes it")
        entry.done(
            ("fault", "report_id", "report_group_id", "any", "times", "seconds", "error_code", "error_msg")
        )
        rules.append(GenerateFault(fault, report_id, group_id, times, seconds, error_code, error_msg))
    return tuple(rules)


def take_generate_fault(
    rules: tuple[GenerateFault, ...], used: dict[int, int], action: str, ident: str
) -> GenerateFault | None:
    """The rule that takes this call, counting it against the rule's `times`; None: no fault. The caller
    holds the state's lock (`used` is the state's per-rule count)."""
    for index, rule in enumerate(rules):
        if not rule.matches(action, ident):
            continue
        if rule.times is not None and used.get(index, 0) >= rule.times:
            continue
        used[index] = used.get(index, 0) + 1
        return rule
    return None
