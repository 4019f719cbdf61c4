#!/usr/bin/python3
"""What deploy/prometheus and deploy/grafana name must exist.

  check_refs.py --rules R.yml... --dashboard D.json... [--exposition F...]

Always checked (the deploy suite, no stack):
  - every recording-rule name (cancel_retry:...) a dashboard query or a rule
    uses is recorded by the rules;
  - every alert has a summary and a runbook_url "FILE#anchor" whose FILE
    exists in the repository and has a heading with that anchor;
  - the dashboard is JSON with panels, each with a query, a title and a
    datasource that is the dashboard's ${datasource} variable.
With --exposition (the integration suite, GET /metrics of every process):
  - every metric name (cancel_retry_...) in the rules and the dashboard is
    one that some process serves: a name, not a list kept by hand, so a
    renamed or removed metric fails here.
Exit 1 with one line per problem.
"""
import argparse
import json
import os
import re
import sys

RECORDED = re.compile(r"^\s*-\s*record:\s*(\S+)\s*$", re.M)
RECORD_REF = re.compile(r"\bcancel_retry:[a-z0-9_:]*[a-z0-9]")
METRIC_REF = re.compile(r"(?<![a-z0-9_:])cancel_retry_[a-z0-9_]*[a-z0-9](?![a-z0-9_:])")
ALERT = re.compile(r"^\s*-\s*alert:\s*(\S+)\s*$", re.M)
RUNBOOK = re.compile(r"^\s*runbook_url:\s*(\S+)\s*$", re.M)
SUMMARY = re.compile(r"^\s*summary:\s*\S", re.M)
EXPOSED = re.compile(r"^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)", re.M)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, re.M)}


def dashboard_queries(dash, problems, name):
    panels = dash.get("panels")
    if not isinstance(panels, list) or not panels:
        problems.append(f"{name}: no panels")
        return []
    exprs = []
    for p in panels:
        if p.get("type") == "row":
            continue
        title = p.get("title") or "(untitled)"
        if not p.get("title"):
            problems.append(f"{name}: a panel without a title")
        ds = p.get("datasource") or {}
        if ds.get("uid") != "${datasource}":
            problems.append(f"{name}: panel {title!r}: datasource is not ${{datasource}}")
        targets = [t.get("expr", "") for t in p.get("targets", [])]
        if not any(targets):
            problems.append(f"{name}: panel {title!r} has no query")
        exprs += [e for e in targets if e]
    return exprs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--rules", nargs="+", required=True)
    ap.add_argument("--dashboard", nargs="+", required=True)
    ap.add_argument("--exposition", nargs="*", default=None)
    a = ap.parse_args()
    problems = []

    rules_text = {}
    for path in a.rules:
        with open(path, encoding="utf-8") as f:
            rules_text[path] = f.read()
    recorded = {n for t in rules_text.values() for n in RECORDED.findall(t)}
    if not recorded:
        problems.append("no recording rule found")

    # Alerts: a summary and a runbook that exists, one per alert.
    for path, text in rules_text.items():
        blocks = re.split(r"(?=^\s*-\s*(?:alert|record):)", text, flags=re.M)
        for b in blocks:
            m = ALERT.search(b)
            if not m:
                continue
            alert = m.group(1)
            if not SUMMARY.search(b):
                problems.append(f"{path}: {alert}: no summary annotation")
            r = RUNBOOK.search(b)
            if not r:
                problems.append(f"{path}: {alert}: no runbook_url")
                continue
            target, _, anchor = r.group(1).partition("#")
            file = os.path.join(a.root, target)
            if not os.path.isfile(file):
                problems.append(f"{path}: {alert}: runbook {target} does not exist")
            elif anchor and anchor not in anchors(file):
                problems.append(f"{path}: {alert}: {target} has no heading #{anchor}")

    uses = {}  # text -> where
    for path, text in rules_text.items():
        uses[path] = text
    for path in a.dashboard:
        try:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
        except (OSError, ValueError) as e:
            problems.append(f"{path}: not JSON: {e}")
            continue
        uses[path] = "\n".join(dashboard_queries(dash, problems, path))

    for where, text in uses.items():
        for ref in sorted(set(RECORD_REF.findall(text))):
            if ref not in recorded:
                problems.append(f"{where}: {ref} is not a recording rule of {', '.join(a.rules)}")

    if a.exposition is not None:
        served = set()
        for path in a.exposition:
            with open(path, encoding="utf-8") as f:
                served |= set(EXPOSED.findall(f.read()))
        if not any(n.startswith("cancel_retry_") for n in served):
            problems.append("the expositions name no cancel_retry_ metric")
        for where, text in uses.items():
            for ref in sorted(set(METRIC_REF.findall(text))):
                if ref not in served:
                    problems.append(f"{where}: {ref} is served by no process")

    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"ok: {len(recorded)} recording rules, {len(a.dashboard)} dashboard(s)"
          + ("" if a.exposition is None else f", names checked against {len(a.exposition)} expositions"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
