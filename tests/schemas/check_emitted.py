#!/usr/bin/python3
"""Run emit_events (the C builders) into a temporary directory and validate
every file it writes against the schema its name starts with
("<schema-name>--<case>.json").

Usage: check_emitted.py EMIT_EVENTS SCHEMAS_DIR
"""
import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate  # noqa: E402


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    emit, schemas_dir = sys.argv[1], sys.argv[2]
    schemas = validate.Schemas(schemas_dir)
    report = validate.Report(verbose=True)
    with tempfile.TemporaryDirectory(prefix="emit-events-") as tmp:
        rc = subprocess.run([emit, tmp]).returncode
        report.result("emit_events exit status", rc == 0, "exit %d" % rc)
        files = sorted(glob.glob(os.path.join(tmp, "*--*.json")))
        # Every event type and the headers must be covered, or a builder
        # could stop being tested without anyone noticing.
        wanted = {"payments.cancel.failed.v1", "payments.cancel.retry.scheduled.v1",
                  "payments.cancel.outcome.v1", "dead-letter.headers"}
        seen = {os.path.basename(f).split("--")[0] for f in files}
        missing = ", ".join(sorted(wanted - seen))
        report.result("every schema covered", not missing, "missing: " + missing if missing else "")
        for path in files:
            validate.run_check(schemas, os.path.basename(path).split("--")[0], [path], report)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
