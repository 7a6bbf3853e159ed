"""Scenario files for the simulator: credentials, runs with status timelines, and faults.

token_ttl_seconds: 3600
params_accepted: both                   # body | query | both: where this Sigma reads a call's parameters
credentials:
  apikey: [{client_id: 8HIG1002H6, client_token: secret}]
  basic: [{username: sigma, password: secret}]
  tokens: [fixed-token]                 # access tokens that are always valid
reports:                                # individual report runs, by reference number
  - reference: ref-1
    report_id: rep-1
    report_name: AccountTransaction
    timeline: [{status: PENDING, seconds: 5}, {status: GENERATED, seconds: 10}, {status: NOTIFIED}]
    repeat: false                       # true: start over after the last step (needs its seconds)
groups:
  - reference: grp-1
    report_group_id: AccountTransaction
    reports: [{report_id: r1, report_name: A, timeline: [...]}, ...]
generate: {reports: 1000, groups: 0, members: 3, final_fraction: 0.9, prefix: bench}
definitions:                            # what RUN_REPORT / EXEC_REPORT_GROUP start
  reports:
    rep-9: {report_name: Daily, timeline: [...]}
    rep-stuck: {report_name: Stuck, never_finishes: true}
  groups: {grp-9: {reports: [...]}}
faults:                                 # see Faults
  latency_seconds: 0.02
  error_rate: 0.0
  generate_faults:                      # on /generate: see simulator/faults.py
    - {report_id: rep-9, fault: http_500, times: 1}
    - {report_group_id: grp-9, fault: failure}
    - {any: true, fault: timeout, seconds: 5}

A timeline's last step has no `seconds`: it lasts forever. `never_finishes: true` (any report: in
`reports`, a group's `reports`, or `definitions`) is `timeline: [GENERATED]`: the run is GENERATED from the
start and never reaches a final status (not with `timeline` or `repeat`); a group with such a member never
finishes either. A RUN_REPORT for a report id `definitions` lacks starts PENDING 2 s, GENERATED 3 s, then
PUBLISHED; an EXEC_REPORT_GROUP for an unknown group one member, GENERATED 3 s, then PUBLISHED.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Final

from sigma_exporter.config.walker import ConfigError, Section, read_yaml_file
from sigma_exporter.sigma.replies import ALL_STATUSES, UNKNOWN
from sigma_exporter.simulator.faults import GenerateFault, parse_generate_faults

#: Statuses a timeline may use: the documented ones, PENDING (no status yet), UNKNOWN (an undocumented
#: value, sent as "IN_PROGRESS") .
TIMELINE_STATUSES: Final = ALL_STATUSES
UNDOCUMENTED_VALUE: Final = "IN_PROGRESS"
PER_REFERENCE_FAULTS: Final = ("garbage", "html", "truncated", "500", "400", "slow", "huge", "wrong_types")


@dataclass(frozen=True)
class TimelineStep:
    """One step of a report's timeline: a status for `seconds` (None: for ever)."""

    status: str
    seconds: float | None = None  # None: lasts forever


#: The timeline of `never_finishes: true`: GENERATED from the start, for ever.
NEVER_FINISHES: Final = (TimelineStep("GENERATED"),)


@dataclass(frozen=True)
class ReportSpec:
    """A report as the simulator plays it: its id and name, its timeline, and the error its failed statuses
    carry."""

    report_id: str
    report_name: str
    timeline: tuple[TimelineStep, ...] = (TimelineStep("NOTIFIED"),)
    repeat: bool = False
    error_code: str = "SIG-RPT-500"
    error_msg: str = "Report generation failed: query returned an error"


@dataclass(frozen=True)
class RunSpec:
    """A run the status API answers for: one report, or a group of member reports."""

    reference: str
    kind: str  # report | group
    reports: tuple[ReportSpec, ...]
    report_group_id: str = ""
    pending_seconds: float = 0.0


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rates are probabilities per status call (0..1)."""

    latency_seconds: float = 0.0
    latency_jitter_seconds: float = 0.0
    down: bool = False  # every connection is reset before a reply
    error_rate: float = 0.0  # HTTP 500 with a FAILURE body
    html_rate: float = 0.0  # HTTP 200 with an HTML error page
    malformed_rate: float = 0.0  # HTTP 200 with broken JSON
    truncated_rate: float = 0.0  # Content-Length promises more than is sent, then the connection closes
    unauthorized: bool = False  # every call (token requests too) gets 401: credentials revoked
    token_expire_every_calls: int = 0  # a token dies after this many status calls (0: never)
    slow_body_seconds: float = 0.0  # the body trickles out over this long
    huge_reply_bytes: int = 0  # pad replies to this size
    bare_204: bool = False  # answer "no status yet" as a bare HTTP 204 instead of a 200 with statusCode 204
    references: dict[str, str] = field(default_factory=dict)  # reference -> one of PER_REFERENCE_FAULTS
    generate_faults: tuple[GenerateFault, ...] = ()  # RUN_REPORT / EXEC_REPORT_GROUP failures: see faults.py

    def merged(self, changes: dict[str, object]) -> Faults:
        """These faults with `changes` applied, validated as a scenario's `faults:` would be; ValueError (a
        ConfigError) names an unknown or bad field."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}")
        data = {**self.__dict__, **changes}
        if "generate_faults" not in changes:
            data["generate_faults"] = [rule.as_config() for rule in self.generate_faults]
        return parse_faults(data, "faults")


@dataclass(frozen=True)
class Credentials:
    """What the simulated Sigma accepts: API keys (client id, client token), basic-auth users, and fixed
    access tokens."""

    apikeys: tuple[tuple[str, str], ...] = (("8HIG1002H6", "sample72695bf9-3932-4f60-88b5-2f-2hjd"),)
    basic: tuple[tuple[str, str], ...] = (("sigma", "sigma-password"),)
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A whole scenario: the runs the status API knows, the credentials, what starts create, the faults, and
    the seed of the fault dice."""

    runs: tuple[RunSpec, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)
    token_ttl_seconds: float = 3600.0
    params_accepted: str = "both"  # body | query | both (a real Sigma may read only one of them)
    definitions_reports: tuple[tuple[str, ReportSpec], ...] = ()
    definitions_groups: tuple[tuple[str, tuple[ReportSpec, ...]], ...] = ()
    faults: Faults = field(default_factory=Faults)
    seed: int = 42


# --- parsing -----------------------------------------------------------------------------------------
def _timeline(section: Section, name: str) -> tuple[TimelineStep, ...]:
    items = section.items(name)
    if not items:
        return (TimelineStep("NOTIFIED"),)
    steps = []
    for index, item in enumerate(items):
        where = f"{section.key(name)}[{index}]"
        step = Section({"status": item} if isinstance(item, str) else item, where, section.source)
        status = (step.text("status", required=True) or "").upper()
        if status not in TIMELINE_STATUSES:
            raise step.error("status", f"should be one of {', '.join(TIMELINE_STATUSES)}, got {status!r}")
        seconds = step.get("seconds")
        step.done()
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
            raise step.error("seconds", "should be a number")
        steps.append(TimelineStep(status, float(seconds) if seconds is not None else None))
    for step_ in steps[:-1]:
        if step_.seconds is None:
            raise section.error(name, "only the last step may last forever")
    return tuple(steps)


def _report_spec(data: object, where: str, source: str, default_id: str) -> ReportSpec:
    section = Section(data, where, source)
    never_finishes = section.flag("never_finishes", False)
    if never_finishes:
        for clash in ("timeline", "repeat"):
            if section.data.get(clash) not in (None, False):
                raise section.error("never_finishes", f"cannot be combined with {clash}")
    spec = ReportSpec(
        report_id=section.text("report_id", default_id) or default_id,
        report_name=section.text("report_name", "Report") or "Report",
        timeline=NEVER_FINISHES if never_finishes else _timeline(section, "timeline"),
        repeat=section.flag("repeat", False),
        error_code=section.text("error_code", "SIG-RPT-500") or "",
        error_msg=section.text("error_msg", ReportSpec.error_msg) or "",
    )
    section.done()
    if spec.repeat and spec.timeline[-1].seconds is None:
        raise section.error("timeline", "a repeating timeline needs seconds on its last step")
    return spec


def parse_faults(data: object, where: str, source: str = "faults") -> Faults:
    """The faults in `data` (a scenario's `faults:`, or a change to them); ConfigError names the key at
    fault."""
    section = Section(data, where, source)
    refs = section.section("references")
    per_ref: dict[str, str] = {}
    for ref, kind in refs.data.items():
        refs.get(str(ref))
        if kind not in PER_REFERENCE_FAULTS:
            raise refs.error(str(ref), f"should be one of {', '.join(PER_REFERENCE_FAULTS)}")
        per_ref[str(ref)] = str(kind)
    faults = Faults(
        latency_seconds=section.number("latency_seconds", 0.0, minimum=0, maximum=600),
        latency_jitter_seconds=section.number("latency_jitter_seconds", 0.0, minimum=0, maximum=600),
        down=section.flag("down", False),
        error_rate=section.number("error_rate", 0.0, minimum=0, maximum=1),
        html_rate=section.number("html_rate", 0.0, minimum=0, maximum=1),
        malformed_rate=section.number("malformed_rate", 0.0, minimum=0, maximum=1),
        truncated_rate=section.number("truncated_rate", 0.0, minimum=0, maximum=1),
        unauthorized=section.flag("unauthorized", False),
        token_expire_every_calls=section.integer("token_expire_every_calls", 0, minimum=0, maximum=10**9),
        slow_body_seconds=section.number("slow_body_seconds", 0.0, minimum=0, maximum=3600),
        huge_reply_bytes=section.integer("huge_reply_bytes", 0, minimum=0, maximum=1 << 30),
        bare_204=section.flag("bare_204", False),
        references=per_ref,
        generate_faults=parse_generate_faults(section, "generate_faults"),
    )
    section.done()
    return faults


def _generated_runs(section: Section) -> list[RunSpec]:
    reports = section.integer("reports", 0, minimum=0, maximum=1_000_000)
    groups = section.integer("groups", 0, minimum=0, maximum=1_000_000)
    members = section.integer("members", 3, minimum=1, maximum=1000)
    final_fraction = section.number("final_fraction", 0.9, minimum=0, maximum=1)
    prefix = section.text("prefix", "gen") or "gen"
    section.done()
    runs: list[RunSpec] = []
    final_reports = round(reports * final_fraction)
    for i in range(reports):
        status = "NOTIFIED" if i < final_reports else "GENERATED"
        spec = ReportSpec(f"{prefix}-rpt-{i:06d}", f"Report{i % 50}", (TimelineStep(status),))
        runs.append(RunSpec(f"{prefix}-r-{i:06d}", "report", (spec,)))
    final_groups = round(groups * final_fraction)
    for i in range(groups):
        status = "PUBLISHED" if i < final_groups else "GENERATED"
        specs = tuple(
            ReportSpec(f"{prefix}-g{i:06d}-m{m}", f"Member{m}", (TimelineStep(status),))
            for m in range(members)
        )
        runs.append(RunSpec(f"{prefix}-g-{i:06d}", "group", specs, report_group_id=f"Group{i % 20}"))
    return runs


def parse_runs(top: Section) -> list[RunSpec]:
    """The runs of a scenario (or of a POST /_sim/runs): its `reports:`, `groups:` and the runs `generate:`
    makes."""
    runs: list[RunSpec] = []
    for index, item in enumerate(top.items("reports")):
        where = f"reports[{index}]"
        section = Section(item, where, top.source)
        reference = section.text("reference", required=True) or ""
        repeat_spec = _report_spec(
            {k: v for k, v in section.data.items() if k != "reference"}, where, top.source, f"report-{index}"
        )
        section.get("report_id")
        runs.append(RunSpec(reference, "report", (repeat_spec,)))
    for index, item in enumerate(top.items("groups")):
        where = f"groups[{index}]"
        section = Section(item, where, top.source)
        reference = section.text("reference", required=True) or ""
        members = tuple(
            _report_spec(m, f"{where}.reports[{i}]", top.source, f"{reference}-m{i}")
            for i, m in enumerate(section.items("reports"))
        )
        runs.append(
            RunSpec(
                reference,
                "group",
                members,
                report_group_id=section.text("report_group_id", "Group") or "Group",
                pending_seconds=section.number("pending_seconds", 0.0, minimum=0),
            )
        )
        section.done()
    runs.extend(_generated_runs(top.section("generate")))
    seen: set[str] = set()
    for run in runs:
        if run.reference in seen:
            raise ConfigError(top.source, "", f"reference {run.reference} appears twice")
        seen.add(run.reference)
    return runs


def _pairs(section: Section, name: str, first: str, second: str) -> tuple[tuple[str, str], ...]:
    result = []
    for index, item in enumerate(section.items(name)):
        entry = Section(item, f"{section.key(name)}[{index}]", section.source)
        result.append((entry.text(first, required=True) or "", entry.text(second, required=True) or ""))
        entry.done()
    return tuple(result)


def parse_scenario(data: object, source: str = "scenario") -> Scenario:
    """A scenario from its parsed YAML; ConfigError names the key at fault."""
    top = Section(data, "", source)
    creds = top.section("credentials")
    credentials = Credentials(
        apikeys=_pairs(creds, "apikey", "client_id", "client_token") or Credentials().apikeys,
        basic=_pairs(creds, "basic", "username", "password") or Credentials().basic,
        tokens=tuple(str(t) for t in creds.items("tokens")),
    )
    creds.done()
    runs = parse_runs(top)
    definitions = top.section("definitions")
    def_reports = definitions.section("reports")
    reports = tuple(
        (str(rid), _report_spec(spec, def_reports.key(str(rid)), source, str(rid)))
        for rid, spec in def_reports.data.items()
    )
    for rid in def_reports.data:
        def_reports.get(str(rid))
    def_groups = definitions.section("groups")
    groups = []
    for gid, spec in def_groups.data.items():
        group = Section(spec, def_groups.key(str(gid)), source)
        members = tuple(
            _report_spec(m, f"{group.path}.reports[{i}]", source, f"{gid}-m{i}")
            for i, m in enumerate(group.items("reports"))
        )
        group.done()
        def_groups.get(str(gid))
        groups.append((str(gid), members))
    definitions.done()
    scenario = Scenario(
        runs=tuple(runs),
        credentials=credentials,
        token_ttl_seconds=top.number("token_ttl_seconds", 3600.0, minimum=0.01),
        params_accepted=top.choice("params_accepted", "both", ("body", "query", "both")),
        definitions_reports=reports,
        definitions_groups=tuple(groups),
        faults=parse_faults(top.get("faults"), "faults", source),
        seed=top.integer("seed", 42, minimum=0, maximum=2**31),
    )
    top.done()
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """The scenario file at `path`; ConfigError names the file and the key at fault."""
    return parse_scenario(read_yaml_file(str(path), "scenario"), str(path))


def builtin_scenario(name: str) -> Path:
    """The file of the built-in scenario `name` (demo, vendor-samples...); ConfigError when there is none."""
    path = Path(__file__).parent / "scenarios" / f"{name}.yml"
    if not path.is_file():
        raise ConfigError(name, "", "no such built-in scenario")
    return path


def status_at(spec: ReportSpec, elapsed: float) -> str:
    """The status a report's timeline shows `elapsed` seconds after its run started."""
    total = sum(step.seconds or 0.0 for step in spec.timeline)
    if spec.repeat and total > 0:
        elapsed %= total
    for step in spec.timeline:
        if step.seconds is None or elapsed < step.seconds:
            return step.status
        elapsed -= step.seconds
    return spec.timeline[-1].status


def wire_status(status: str) -> str:
    """What the API sends for a status: PENDING is no value, UNKNOWN an undocumented one."""
    if status == "PENDING":
        return ""
    return UNDOCUMENTED_VALUE if status == UNKNOWN else status


__all__ = [
    "Faults",
    "ReportSpec",
    "RunSpec",
    "Scenario",
    "TimelineStep",
    "load_scenario",
    "parse_scenario",
    "replace",
]
