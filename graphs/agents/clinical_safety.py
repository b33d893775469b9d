"""The clinical-safety agent: does this change touch dosing, units, alarms or device control?

Like the reviewer it works a file at a time (`scan_file`), so the graph
streams the diff once for both; `assess` turns the scans and the reviewer's
findings into the verdict (safety-critical or not, IEC 62304 class, whether
tests changed), which is why it runs after the stream, beside the reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from assistant import clinical as _clinical
from assistant.diffs import FileDiff
from assistant.domain import ClinicalSafety, Finding


def scan_file(file: FileDiff) -> _clinical.ClinicalFileScan:
    return _clinical.scan_file(file)


def assess(scans: Iterable[_clinical.ClinicalFileScan], findings: Sequence[Finding]) -> ClinicalSafety:
    return _clinical.combine(list(scans), findings)


def assess_files(files: Iterable[FileDiff], findings: Sequence[Finding]) -> ClinicalSafety:
    """The agent on its own, over parsed files."""
    return assess((scan_file(f) for f in files), findings)
