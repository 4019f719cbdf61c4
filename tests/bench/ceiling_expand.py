#!/usr/bin/env python3
"""Expand tests/bench/ceiling.sql for pgbench: a batch of BATCH requests.

Usage: ceiling_expand.py BATCH < ceiling.sql > expanded.sql

Lines between "-- @each" and "-- @end" are repeated for i = 1..BATCH with
{i} replaced by i; {list:NAME} becomes ":NAME1, ..., :NAMEBATCH"; {batch}
becomes BATCH. The template's own comment says why.
"""
import re
import sys


def subst(line, batch, i=None):
    if line.lstrip().startswith("--"):
        return line  # comments are not expanded (they describe the placeholders)
    line = line.replace("{batch}", str(batch))
    line = re.sub(r"\{list:(\w+)\}",
                  lambda m: ", ".join(f":{m.group(1)}{k}" for k in range(1, batch + 1)), line)
    if i is not None:
        line = line.replace("{i}", str(i))
    if "{" in line and re.search(r"\{(i|batch|list:\w+)\}", line):
        sys.exit(f"ceiling_expand: placeholder outside an @each block: {line.strip()}")
    return line


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        sys.exit("usage: ceiling_expand.py BATCH < ceiling.sql > expanded.sql")
    batch = int(sys.argv[1])
    block = None
    out = []
    for line in sys.stdin:
        tag = line.strip()
        if tag == "-- @each":
            if block is not None:
                sys.exit("ceiling_expand: nested -- @each")
            block = []
        elif tag == "-- @end":
            if block is None:
                sys.exit("ceiling_expand: -- @end without -- @each")
            for i in range(1, batch + 1):
                out.extend(subst(l, batch, i) for l in block)
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(subst(line, batch))
    if block is not None:
        sys.exit("ceiling_expand: -- @each without -- @end")
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
