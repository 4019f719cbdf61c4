#!/usr/bin/python3
"""Validate JSON documents against the event schemas of schemas/events.

Two modes:

  validate.py --schemas DIR --examples DIR
      Check every schema against the draft 2020-12 metaschema, then every
      example: examples/<schema-name>/valid/*.json must pass
      <schema-name>.schema.json, examples/<schema-name>/invalid/*.json must
      fail it, breaking exactly one rule (the name says which). Every schema that is more than a bag of $defs needs at least one
      valid and one invalid example, so a new schema cannot ship untested.

  validate.py --schemas DIR --check SCHEMA-NAME FILE...
      Every FILE must pass SCHEMA-NAME.schema.json (used by emit-events to
      hold the C builders to the schemas).

Runs on Debian's python3-jsonschema 4.10 with no network: every $ref
resolves from the schema files on disk, and a $ref to anything else fails.
date-time is checked by our own RFC 3339 checker, the same rules as
src/base/timeutil.c, because jsonschema's needs a package Debian does not install.
"""
import argparse
import glob
import json
import os
import re
import sys

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, RefResolver

RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]+)?([Zz]|[+-]([0-9]{2}):([0-9]{2}))$")


def is_rfc3339(value):
    if not isinstance(value, str):
        return True
    m = RFC3339.match(value)
    if not m:
        return False
    year, mon, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    mdays = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= mon <= 12 or not 1 <= day <= mdays[mon - 1]:
        return False
    if hour > 23 or minute > 59 or sec > 60:
        return False
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    return True


def format_checker():
    checker = FormatChecker()
    checker.checkers["date-time"] = (is_rfc3339, ())
    return checker


def no_network(uri):
    raise jsonschema.exceptions.RefResolutionError(
        "refusing to fetch %s: every $ref must resolve from schemas/events" % uri)


class Schemas:
    def __init__(self, directory):
        self.by_name = {}
        self.store = {}
        for path in sorted(glob.glob(os.path.join(directory, "*.schema.json"))):
            with open(path, encoding="utf-8") as f:
                schema = json.load(f)
            name = os.path.basename(path)[: -len(".schema.json")]
            self.by_name[name] = schema
            self.store[schema["$id"]] = schema
        self.checker = format_checker()

    def validator(self, name):
        schema = self.by_name[name]
        resolver = RefResolver.from_schema(
            schema, store=self.store, handlers={"http": no_network, "https": no_network})
        return Draft202012Validator(schema, resolver=resolver, format_checker=self.checker)

    @staticmethod
    def defs_only(schema):
        return set(schema) <= {"$schema", "$id", "title", "description", "$comment", "$defs"}


class Report:
    def __init__(self, verbose):
        self.tested = self.passing = 0
        self.failures = []
        self.verbose = verbose

    def result(self, label, ok, detail=""):
        self.tested += 1
        if ok:
            self.passing += 1
            if self.verbose:
                print("[PASS] %s%s" % (label, (": " + detail) if detail else ""))
        else:
            self.failures.append(label)
            print("[FAIL] %s: %s" % (label, detail))

    def finish(self):
        print("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d"
              % (self.tested, self.passing, len(self.failures)))
        return 0 if not self.failures else 1


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def first_error(validator, doc):
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "(root)"
    return "%s: %s" % (where, e.message[:160])


def broken_rules(validator, doc):
    """The rules doc breaks, one per instance location: an invalid example
    must break exactly one, or it does not test what its name says. pattern
    and format on the same string are one rule (RFC 3339 syntax)."""
    rules = set()
    for e in validator.iter_errors(doc):
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        kind = "syntax" if e.validator in ("pattern", "format") else e.validator
        if e.validator == "required":
            kind += ":" + e.message.split("'")[1]
        rules.add("%s %s" % (where, kind))
    return rules


def run_examples(schemas, examples_dir, report):
    for name, schema in sorted(schemas.by_name.items()):
        try:
            Draft202012Validator.check_schema(schema)
            report.result("schema %s" % name, True)
        except jsonschema.exceptions.SchemaError as e:
            report.result("schema %s" % name, False, e.message)
            continue
        validator = schemas.validator(name)
        for kind in ("valid", "invalid"):
            files = sorted(glob.glob(os.path.join(examples_dir, name, kind, "*.json")))
            if not files and not Schemas.defs_only(schema):
                report.result("%s/%s" % (name, kind), False, "no examples")
            for path in files:
                label = "%s/%s/%s" % (name, kind, os.path.basename(path))
                try:
                    doc = load(path)
                except ValueError as e:
                    report.result(label, False, "not JSON: %s" % e)
                    continue
                err = first_error(validator, doc)
                if kind == "valid":
                    report.result(label, err is None, err or "")
                elif err is None:
                    report.result(label, False, "accepted, but must be refused")
                else:
                    broken = broken_rules(validator, doc)
                    report.result(label, len(broken) == 1,
                                  err if len(broken) == 1 else
                                  "breaks %d rules, must break exactly one: %s"
                                  % (len(broken), "; ".join(sorted(broken))))
    # An example directory without a schema is a typo that would test nothing.
    for d in sorted(glob.glob(os.path.join(examples_dir, "*"))):
        if os.path.basename(d) not in schemas.by_name:
            report.result("examples/%s" % os.path.basename(d), False, "no such schema")


def run_check(schemas, name, files, report):
    if name not in schemas.by_name:
        report.result(name, False, "no such schema")
        return
    validator = schemas.validator(name)
    for path in files:
        try:
            doc = load(path)
        except ValueError as e:
            report.result(path, False, "not JSON: %s" % e)
            continue
        err = first_error(validator, doc)
        report.result("%s against %s" % (os.path.basename(path), name), err is None, err or "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", required=True, help="directory of *.schema.json")
    ap.add_argument("--examples", help="directory of <schema-name>/{valid,invalid}/*.json")
    ap.add_argument("--check", nargs="+", metavar=("SCHEMA", "FILE"),
                    help="validate FILEs against SCHEMA (a name without .schema.json)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing checks too")
    args = ap.parse_args()
    if (args.examples is None) == (args.check is None):
        ap.error("give exactly one of --examples and --check")
    if args.check is not None and len(args.check) < 2:
        ap.error("--check needs a schema name and at least one file")

    schemas = Schemas(args.schemas)
    report = Report(args.verbose)
    if args.examples is not None:
        run_examples(schemas, args.examples, report)
    else:
        run_check(schemas, args.check[0], args.check[1:], report)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
