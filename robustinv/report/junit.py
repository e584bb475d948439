"""The gate verdict as JUnit XML, the format every CI system shows as a test report.

One `<testsuite name="robustinv.gating">` holds one `<testcase>` per rule, named by the rule's
one-line statement. A failed `fail`-level rule carries a `<failure type="gate">` whose message gives
the measured and the required value. A failed `warn`-level rule must not fail the CI job, so it has
no `<failure>`: its warning is the first line of the testcase's `<system-out>` ("WARNING: ..."),
which Jenkins and GitLab show with the test case. Every testcase's `<system-out>` holds the
measured value, the requirement, the reason, how many rows matched and whether the judged rows
were verified against the results store (also the suite's `verification` property). Rule, model and attack names
come from user files: characters XML 1.0 cannot hold (control characters) are spelled as escapes,
so the document always parses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from robustinv.gating import outcome_summary
from robustinv.records import GateLevel, GateVerdict, RuleOutcome
from robustinv.text import xml_safe

SUITE_NAME = "robustinv.gating"


def render_junit(verdict: GateVerdict) -> str:
    """A JUnit XML document of the verdict; the same verdict always renders to the same text."""
    tests, failures = str(len(verdict.outcomes)), str(len(verdict.failures))
    root = ET.Element("testsuites", {"name": "robustinv", "tests": tests, "failures": failures, "errors": "0"})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, "tests": tests, "failures": failures, "errors": "0", "skipped": "0",
    })
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "policy", "value": xml_safe(verdict.policy)})
    ET.SubElement(properties, "property", {"name": "baseline", "value": xml_safe(verdict.baseline or "none")})
    ET.SubElement(properties, "property", {"name": "verification", "value": xml_safe(verdict.verification)})
    for outcome in verdict.outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": SUITE_NAME, "name": xml_safe(outcome.rule)})
        if not outcome.passed and outcome.level is GateLevel.fail:
            failure = ET.SubElement(case, "failure", {"message": xml_safe(outcome_summary(outcome)), "type": "gate"})
            failure.text = xml_safe(outcome.reason)
        ET.SubElement(case, "system-out").text = xml_safe(f"{_details(outcome)}\n{verdict.verification}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _details(outcome: RuleOutcome) -> str:
    if outcome.passed:
        status = "PASS"
    elif outcome.level is GateLevel.warn:
        status = "WARNING (level warn: does not fail the gate)"
    else:
        status = "FAIL"
    return f"{status}: {outcome_summary(outcome)}\nmatched rows: {outcome.rows}"
