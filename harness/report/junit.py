"""matrix.junit.xml: the run as JUnit XML, for CI test-report viewers.

One ``<testcase>`` per cell: ``classname`` is the case, ``name`` the rest of the cell id.
fail and xpass become ``<failure>``, error ``<error>`` (both with the reason, details and
evidence as text), skip and xfail ``<skipped>`` with a one-line message only (an xfail's
reads ``expected failure: <reason>``), cut to SKIP_MESSAGE_LIMIT: the default run has
thousands of skipped cells and matrix.json holds every reason whole.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from harness.verdicts.outcomes import CellResult
from harness.report.model import Run
from harness.report.summary import short

# Characters XML 1.0 does not allow, even escaped.
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MESSAGE_LIMIT = 1000
SKIP_MESSAGE_LIMIT = 160


def _x(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _name(cell: CellResult) -> str:
    prefix = cell.case + "::"
    return cell.id[len(prefix):] if cell.id.startswith(prefix) else cell.id


def _body(cell: CellResult) -> str:
    parts = [cell.reason]
    if cell.details:
        parts.append("details: " + json.dumps(cell.details, indent=2, sort_keys=True, default=str))
    if cell.evidence:
        parts.append(f"evidence: {cell.evidence}")
    return _x("\n".join(p for p in parts if p))


def _testcase(parent: ET.Element, cell: CellResult) -> None:
    tc = ET.SubElement(parent, "testcase", classname=_x(cell.case), name=_x(_name(cell)),
                       time=f"{cell.duration_s:.3f}")
    if cell.features and cell.outcome != "skip":
        props = ET.SubElement(tc, "properties")
        ET.SubElement(props, "property", name="features", value=_x(",".join(cell.features)))
    if cell.outcome in ("fail", "xpass"):
        el = ET.SubElement(tc, "failure", message=_x(cell.reason[:MESSAGE_LIMIT]), type=cell.outcome)
        el.text = _body(cell)
    elif cell.outcome == "error":
        el = ET.SubElement(tc, "error", message=_x(cell.reason[:MESSAGE_LIMIT]), type="error")
        el.text = _body(cell)
    elif cell.outcome == "xfail":
        ET.SubElement(tc, "skipped", message=_x(short(f"expected failure: {cell.reason}", SKIP_MESSAGE_LIMIT)),
                      type="xfail")
    elif cell.outcome == "skip":
        ET.SubElement(tc, "skipped", message=_x(short(cell.reason, SKIP_MESSAGE_LIMIT)), type="skip")


def render(run: Run) -> str:
    s = run.summary
    counts = {"tests": str(len(run.cells)), "failures": str(s["fail"] + s["xpass"]), "errors": str(s["error"]),
              "skipped": str(s["skip"] + s["xfail"]), "time": f"{run.duration_s:.3f}"}
    root = ET.Element("testsuites", {"name": _x(f"torchsharp-conformance {run.run_id}"), **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "torchsharp-conformance", **counts,
                                              "timestamp": _x(run.started)})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=_x(run.run_id))
    for key, value in run.provenance.items():
        ET.SubElement(props, "property", name=_x(key), value=_x(value))
    for cell in run.cells:
        _testcase(suite, cell)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
