"""The `action` values of the Sigma API, defined once: the client sends them, the parsers name them in
errors, the metrics label by them and the simulator answers them."""

from __future__ import annotations

from typing import Final

GENERATE_TOKEN: Final = "GENERATE_TOKEN"  # noqa: S105 - an action name, not a secret
REPORT_CHECK: Final = "REPORT_INSTANCE_STATUS_CHECK"
GROUP_CHECK: Final = "REPORT_GROUP_INSTANCE_STATUS_CHECK"
RUN_REPORT: Final = "RUN_REPORT"
EXEC_REPORT_GROUP: Final = "EXEC_REPORT_GROUP"

#: The actions the poller calls, each exported from zero in the API metrics.
POLLED_ACTIONS: Final = (GENERATE_TOKEN, REPORT_CHECK, GROUP_CHECK)
#: The actions that start a run.
START_ACTIONS: Final = (RUN_REPORT, EXEC_REPORT_GROUP)
