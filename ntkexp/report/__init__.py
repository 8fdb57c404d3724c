"""Sweep reports: every job's ``summary.json`` below a directory collected into tidy tables, figures and a Markdown
report (mean, std and n over seeds, grouped by everything else the jobs were overridden with). Each task's section is
a module here registering its ``rows`` and ``section`` with :func:`register_section` (this is their list); a task
without one is left out of the report.

    ntkexp-report outputs/correlate/multirun/2026-11-24/10-00-00
"""

from ntkexp.report import (  # noqa: E402,F401  (registration)
    correlate,
    kernel_evolution,
    prune_search,
    score,
    search,
    simulated_search,
)
from ntkexp.report.base import (
    SECTIONS,
    ReportSection,
    collect,
    register_section,
    write_report,
)

__all__ = ["SECTIONS", "ReportSection", "collect", "register_section", "write_report"]
