"""Report helpers shared by the Molecule scenarios' testinfra tests: read a report.json that a
scenario step wrote into Molecule's ephemeral directory, and compare findings across reports."""

import json
import os

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
INVENTORY = os.path.join(EPHEMERAL, "inventory")


def load(which):
    """The report.json of a step (a directory under the ephemeral directory, or an absolute path)."""
    with open(os.path.join(EPHEMERAL, which, "report.json")) as f:
        return json.load(f)


def failing(report):
    """(rule, subject id) of every finding that fails or errors."""
    return {(f["rule"], f["subject"]["id"]) for f in report["findings"] if f["status"] in ("fail", "error")}


def finding(report, rule, subject):
    (f,) = [x for x in report["findings"] if x["rule"] == rule and x["subject"]["id"] == subject]
    return f


def status(report, rule, subject):
    return finding(report, rule, subject)["status"]
