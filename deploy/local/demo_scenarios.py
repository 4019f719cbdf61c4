#!/usr/bin/env python3
"""demo_scenarios: the scenarios of deploy/local/demo, their expected ends, and
the report. Run by deploy/local/demo once the stack and the pipeline's
processes are up; never on its own (see deploy/local/demo --help).

  setup   register the payments and faults in gateway-sim, publish the batch
  wait    until every scenario is final and its events are on Kafka
  report  print the report; exit 1 if a scenario did not end as expected

Standard library only: it talks to gateway-sim over HTTP, to PostgreSQL through
psql, and to Kafka through cancelctl and topic-dump.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

FINAL = {"SUCCEEDED", "ALREADY_REFUNDED", "FAILED", "EXHAUSTED", "MANUALLY_RESOLVED"}

# One row per scenario: what the gateway holds, what is injected, what is
# published, and how it must end. "refunds"/"refunded" are what the pipeline
# refunded (the gateway-sim ledger's refund entries), "dlq" the dead-letter
# reasons expected for the request.
SCENARIOS = [
    dict(name="ok", what="succeeds at once", gateway="toss", amount=15000, currency="KRW",
         status="SUCCEEDED", attempts=1, refunds=1, refunded=15000),
    dict(name="transient", what="400 PROVIDER_ERROR, 503, then ok", gateway="toss",
         amount=12000, currency="KRW",
         faults=[{"type": "provider_error", "times": 1}, {"type": "error_5xx", "times": 1}],
         status="SUCCEEDED", attempts=3, refunds=1, refunded=12000),
    dict(name="applied-then-timeout", what="refund made, answer lost (timeout)",
         gateway="toss", amount=30000, currency="KRW",
         # Longer than the demo's 2s gateway timeout, shorter than timeout +
         # retry delay (3s): attempt 2 finds the stored success. On a loaded
         # machine attempt 2 may still meet the hanging first call (409, "in
         # progress") and a third attempt gets the success: more attempts,
         # never a second refund, which is what the demo insists on.
         faults=[{"type": "apply_then_hang", "delayMs": 2200, "times": 1}],
         status="SUCCEEDED", attempts=2, attempts_max=3, refunds=1, refunded=30000),
    dict(name="already-refunded", what="refunded before (by hand)", gateway="toss",
         amount=9000, currency="KRW", already=9000,
         status="ALREADY_REFUNDED", attempts=1, refunds=0, refunded=0),
    dict(name="permanent", what="cancel 7000 of 5000: NOT_CANCELABLE_AMOUNT",
         gateway="toss", amount=5000, currency="KRW", cancel=7000, partial=True,
         status="FAILED", attempts=1, refunds=0, refunded=0, dlq=["FAILED"]),
    dict(name="exhausted", what="503 every time", gateway="toss", amount=8000,
         currency="KRW", faults=[{"type": "error_5xx", "times": 0}],
         status="EXHAUSTED", attempts=4, refunds=0, refunded=0, dlq=["EXHAUSTED"]),
    dict(name="duplicate", what="published twice, same fields", gateway="toss",
         amount=4000, currency="KRW", duplicate=True,
         status="SUCCEEDED", attempts=1, refunds=1, refunded=4000),
    dict(name="conflict", what="same requestId again, other amount", gateway="toss",
         amount=6000, currency="KRW", conflict_amount=5000,
         status="SUCCEEDED", attempts=1, refunds=1, refunded=6000,
         dlq=["IDEMPOTENCY_CONFLICT"]),
    dict(name="stripe-partial", what="Stripe, refund 2000 of 5000 USD", gateway="stripe",
         amount=5000, currency="USD", cancel=2000, partial=True,
         status="SUCCEEDED", attempts=1, refunds=1, refunded=2000),
    # PortOne: every attempt inquires first and sends the balance it read as
    # currentCancellableAmount; the lost answer's cancel is found by the next
    # inquiry (our mark in its reason), not sent again.
    dict(name="portone-lost", what="PortOne, cancel made, answer lost",
         gateway="portone", amount=11000, currency="KRW",
         faults=[{"type": "apply_then_drop", "times": 1}],
         status="SUCCEEDED", attempts=2, refunds=1, refunded=11000),
    # KakaoPay has no idempotency key: the same, by the order inquiry (our
    # mark in the cancel's payload) before every attempt.
    dict(name="kakaopay-lost", what="KakaoPay (no key), cancel made, answer lost",
         gateway="kakaopay", amount=13000, currency="KRW",
         faults=[{"type": "apply_then_drop", "times": 1}],
         status="SUCCEEDED", attempts=2, refunds=1, refunded=13000),
    # Adyen answers only "received": the request waits PENDING (no attempt
    # spent) until gateway-sim's signed REFUND webhook reaches the
    # webhook-receiver, which stores it and makes the request due; the next
    # attempt reads it and ends SUCCEEDED without calling Adyen again.
    dict(name="adyen-webhook", what="Adyen, result by signed REFUND webhook",
         gateway="adyen", amount=4500, currency="EUR",
         status="SUCCEEDED", attempts=2, attempts_max=3, refunds=1, refunded=4500),
]
MALFORMED = dict(name="malformed", what="not JSON at all", dlq=["PARSE_ERROR"],
                 value=b"{this is not json")
TIMELINE_OF = "applied-then-timeout"


def request_id(run, name):
    return f"demo-{run}-{name}"


# Payment ids in each gateway's own style.
PAYMENT_PREFIX = {"toss": "tpay", "stripe": "pi", "portone": "payment", "kakaopay": "T",
                  "adyen": "PSP"}


def payment_key(run, sc):
    return f"{PAYMENT_PREFIX[sc['gateway']]}-{run}-{sc['name']}"


# ------------------------------------------------------------------ output


class Out:
    """Headings and tables, bold and coloured only on a terminal."""

    def __init__(self):
        self.tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def _sgr(self, code, s):
        return f"\x1b[{code}m{s}\x1b[0m" if self.tty else s

    def heading(self, s):
        print()
        print(self._sgr("1", s))
        print(self._sgr("2", "-" * len(s)) if self.tty else "-" * len(s))

    def good(self, s):
        return self._sgr("32", s)

    def bad(self, s):
        return self._sgr("1;31", s)

    def table(self, headers, rows, maxw=None):
        """Aligned columns; cells cut to maxw[i] characters when given.
        Colour codes do not count towards a cell's width."""
        def plain(s):
            out, i = [], 0
            while i < len(s):
                if s[i] == "\x1b":
                    i = s.index("m", i) + 1
                    continue
                out.append(s[i])
                i += 1
            return "".join(out)

        def cut(s, i):
            s = "" if s is None else str(s)
            if maxw and maxw[i] and len(plain(s)) > maxw[i]:
                s = plain(s)[: maxw[i] - 1] + "~"
            return s

        rows = [[cut(c, i) for i, c in enumerate(r)] for r in rows]
        widths = [len(h) for h in headers]
        for r in rows:
            for i, c in enumerate(r):
                widths[i] = max(widths[i], len(plain(c)))

        def line(cells):
            parts = []
            for i, c in enumerate(cells):
                pad = widths[i] - len(plain(c))
                parts.append(c + " " * pad if i < len(cells) - 1 else c)
            return "  " + "  ".join(parts).rstrip()

        print(self._sgr("1", line(headers)) if self.tty else line(headers))
        for r in rows:
            print(line(r))


# ------------------------------------------------------------------ I/O


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def sim(args, method, path, body=None, want=(200, 201)):
    status, doc = http(method, args.sim + path, body)
    if status not in want:
        sys.exit(f"[demo] error: gateway-sim {method} {path} answered {status}: {doc}")
    return doc


def psql_json(args, sql):
    """Rows of sql as a list of dicts (the query is wrapped in json_agg)."""
    wrapped = f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"
    r = subprocess.run([args.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        args.dsn, "-c", wrapped], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return json.loads(r.stdout or "[]")


def topic(args, role):
    """Messages of a topic (topic-dump), newest run's only (key or
    dlq.request.id starting with the run's prefix)."""
    r = subprocess.run([args.topic_dump, "--config", args.config, "--topic", role,
                        "--timeout", "15s"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"topic-dump {role} failed: {r.stderr.strip()}")
    prefix = request_id(args.run, "")
    out = []
    for line in r.stdout.splitlines():
        m = json.loads(line)
        rid = m.get("headers", {}).get("dlq.request.id") or m.get("key") or ""
        if rid.startswith(prefix):
            m["requestId"] = rid
            out.append(m)
    return out


def cancelctl(args, *argv, stdin=None):
    r = subprocess.run([args.cancelctl, "--config", args.config, *argv], input=stdin,
                       capture_output=True)
    if r.returncode != 0:
        sys.exit(f"[demo] error: cancelctl {' '.join(argv[:3])} ... failed "
                 f"(exit {r.returncode}): {r.stderr.decode(errors='replace').strip()}")


def publish(args, sc, amount):
    argv = ["publish", "--request-id", request_id(args.run, sc["name"]),
            "--gateway", sc["gateway"], "--payment-key", payment_key(args.run, sc),
            "--amount", str(amount), "--currency", sc["currency"],
            "--reason", f"demo: {sc['name']}"]
    if sc.get("partial"):
        argv.append("--partial")
    cancelctl(args, *argv)


# ------------------------------------------------------------------ steps


def cmd_setup(args):
    for sc in SCENARIOS:
        pk = payment_key(args.run, sc)
        sim(args, "POST", "/_sim/payments",
            {"gateway": sc["gateway"], "paymentKey": pk, "amount": sc["amount"],
             "currency": sc["currency"], "refunded": sc.get("already", 0)})
        for f in sc.get("faults", []):
            sim(args, "POST", "/_sim/faults", dict(f, paymentKey=pk))
    print(f"registered {len(SCENARIOS)} payments in gateway-sim, "
          f"{sum(len(s.get('faults', [])) for s in SCENARIOS)} faults")
    n = 0
    for sc in SCENARIOS:
        publish(args, sc, sc.get("cancel", sc["amount"]))
        n += 1
        if sc.get("duplicate"):
            publish(args, sc, sc.get("cancel", sc["amount"]))
            n += 1
        if "conflict_amount" in sc:
            publish(args, sc, sc["conflict_amount"])
            n += 1
    cancelctl(args, "publish", "--file", "-", "--raw", "--key",
              request_id(args.run, MALFORMED["name"]), stdin=MALFORMED["value"])
    n += 1
    print(f"published {n} messages to the cancel-failed topic (request ids "
          f"{request_id(args.run, '<scenario>')})")


def dead_processes(args):
    dead = []
    for f in sorted(os.listdir(args.pids)):
        if not f.endswith(".pid"):
            continue
        try:
            pid = int(open(os.path.join(args.pids, f)).read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            dead.append(f[:-4].split("-", 1)[-1])
    return dead


def duplicate_seen(args, rid):
    """Did the intake log that it ignored the second copy of rid?"""
    try:
        for line in open(args.intake_log, encoding="utf-8", errors="replace"):
            if rid in line and "duplicate" in line:
                return True
    except OSError:
        pass
    return False


def pending(args):
    """What is not final yet, as human-readable strings (empty = all done)."""
    waiting = []
    rows = {r["request_id"]: r for r in psql_json(
        args, "SELECT request_id, status, attempts, last_error_code FROM cancel_request "
              f"WHERE request_id LIKE '{request_id(args.run, '')}%'")}
    for sc in SCENARIOS:
        rid = request_id(args.run, sc["name"])
        r = rows.get(rid)
        if r is None:
            waiting.append(f"{sc['name']}: not in the db yet")
        elif r["status"] not in FINAL:
            err = f", last error {r['last_error_code']}" if r["last_error_code"] else ""
            waiting.append(f"{sc['name']}: {r['status']} after {r['attempts']} attempt(s){err}")
        if sc.get("duplicate") and not duplicate_seen(args, rid):
            waiting.append(f"{sc['name']}: the intake has not ignored the second copy yet")
    backlog = psql_json(args, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    if backlog and backlog[0]["n"]:
        waiting.append(f"outbox: {backlog[0]['n']} event(s) not published yet")
    if waiting:
        return waiting
    # The db is done: the events must be on Kafka now.
    outcomes = {m["requestId"] for m in topic(args, "outcome")}
    for sc in SCENARIOS:
        if request_id(args.run, sc["name"]) not in outcomes:
            waiting.append(f"{sc['name']}: no outcome event on Kafka yet")
    dlq = [(m["requestId"], m["headers"].get("dlq.reason")) for m in topic(args, "dlq")]
    for sc in SCENARIOS + [MALFORMED]:
        for reason in sc.get("dlq", []):
            if (request_id(args.run, sc["name"]), reason) not in dlq:
                waiting.append(f"{sc['name']}: no {reason} dead letter yet")
    if not waiting and args.sink:
        for name in missing_alerts(args):
            waiting.append(f"{name}: no Slack alert posted yet")
    return waiting


def sink_posts(args):
    status, doc = http("GET", args.sink + "/_sink/posts")
    if status != 200:
        raise RuntimeError(f"slack-sink GET /_sink/posts answered {status}")
    return doc.get("posts", [])


def alert_expected(sc):
    """Final failures must reach a human: FAILED and EXHAUSTED requests."""
    return sc["status"] in ("FAILED", "EXHAUSTED")


def missing_alerts(args):
    """Scenarios whose alert is expected but no Slack post names them."""
    blobs = [json.dumps(p.get("payload", p.get("raw", ""))) for p in sink_posts(args)]
    return [sc["name"] for sc in SCENARIOS if alert_expected(sc) and
            not any(request_id(args.run, sc["name"]) in b for b in blobs)]


def cmd_wait(args):
    start = time.monotonic()
    last, last_print = None, 0.0
    while True:
        dead = dead_processes(args)
        if dead:
            print(f"[demo] error: {', '.join(dead)} stopped during the demo; see its log in "
                  f"{args.logs}/", file=sys.stderr)
            return 1
        try:
            waiting = pending(args)
        except RuntimeError as e:
            waiting = [str(e)]
        elapsed = time.monotonic() - start
        if not waiting:
            print(f"all {len(SCENARIOS) + 1} scenarios final after {elapsed:.0f}s")
            return 0
        if elapsed > args.timeout:
            print(f"[demo] error: not everything was final after {args.timeout}s; "
                  "still waiting for:", file=sys.stderr)
            for w in waiting:
                print(f"    {w}", file=sys.stderr)
            print(f"[demo] the processes' logs are in {args.logs}/", file=sys.stderr)
            return 1
        # Progress: on a change, or every 10s, one line.
        summary = f"{len(waiting)} thing(s) pending: {waiting[0]}"
        if summary != last or time.monotonic() - last_print > 10:
            print(f"  [{elapsed:4.0f}s] {summary}", flush=True)
            last, last_print = summary, time.monotonic()
        time.sleep(0.5)


def fmt_amount(n, currency):
    return f"{n:,} {currency}"


def cmd_report(args):
    out = Out()
    prefix = request_id(args.run, "")
    rows = {r["request_id"]: r for r in psql_json(
        args, "SELECT request_id, status, attempts, last_error_code, last_http_status "
              f"FROM cancel_request WHERE request_id LIKE '{prefix}%'")}
    outcome_msgs = topic(args, "outcome")
    dlq_msgs = topic(args, "dlq")
    outcomes = {}
    for m in outcome_msgs:
        try:
            outcomes.setdefault(m["requestId"], []).append(json.loads(m["value"]))
        except (TypeError, ValueError):
            pass
    problems = []

    # ---- per request
    out.heading("Requests (expected -> what happened)")
    table = []
    for sc in SCENARIOS:
        rid = request_id(args.run, sc["name"])
        r = rows.get(rid, {})
        led = sim(args, "GET", f"/_sim/ledger/{payment_key(args.run, sc)}")
        calls = sim(args, "GET", f"/_sim/calls?paymentKey={payment_key(args.run, sc)}")
        calls = calls.get("calls", calls) if isinstance(calls, dict) else calls
        refunds = led.get("refunds", [])
        refunded = sum(x.get("amount", 0) for x in refunds)
        reasons = sorted(m["headers"].get("dlq.reason", "?") for m in dlq_msgs
                         if m["requestId"] == rid)
        ev = outcomes.get(rid, [])
        ev_status = ev[-1].get("data", {}).get("status") if ev else None
        bad = []
        if r.get("status") != sc["status"]:
            bad.append(f"status {r.get('status')} (expected {sc['status']})")
        lo, hi = sc["attempts"], sc.get("attempts_max", sc["attempts"])
        if not isinstance(r.get("attempts"), int) or not lo <= r["attempts"] <= hi:
            want = str(lo) if lo == hi else f"{lo}-{hi}"
            bad.append(f"{r.get('attempts')} attempts (expected {want})")
        if len(refunds) != sc["refunds"] or refunded != sc["refunded"]:
            bad.append(f"{len(refunds)} refund(s) of {refunded} "
                       f"(expected {sc['refunds']} of {sc['refunded']})")
        if ev_status != sc["status"]:
            bad.append(f"outcome event {ev_status} (expected {sc['status']})")
        if reasons != sorted(set(reasons)) or set(reasons) != set(sc.get("dlq", [])):
            bad.append(f"dead letters {reasons or 'none'} (expected {sc.get('dlq') or 'none'})")
        for b in bad:
            problems.append(f"{sc['name']}: {b}")
        table.append([
            sc["name"], sc["what"],
            sc["status"] + "/" + str(sc["attempts"]),
            r.get("status", "-"), str(r.get("attempts", "-")), str(len(calls)),
            str(len(refunds)), fmt_amount(refunded, sc["currency"]),
            ",".join(reasons) or "-",
            out.good("ok") if not bad else out.bad("MISMATCH"),
        ])
    mal = [m for m in dlq_msgs if m["requestId"] == request_id(args.run, MALFORMED["name"])]
    mal_reasons = sorted(m["headers"].get("dlq.reason", "?") for m in mal)
    mal_ok = mal_reasons == MALFORMED["dlq"]
    if not mal_ok:
        problems.append(f"malformed: dead letters {mal_reasons or 'none'} "
                        f"(expected {MALFORMED['dlq']})")
    table.append([MALFORMED["name"], MALFORMED["what"], "dead letter", "(no request)", "-",
                  "0", "0", "-", ",".join(mal_reasons) or "-",
                  out.good("ok") if mal_ok else out.bad("MISMATCH")])
    print(f"  request ids: {prefix}<scenario>; calls, refunds and refunded are from the "
          "gateway-sim ledger")
    out.table(["SCENARIO", "SET-UP", "EXPECTED", "STATUS", "ATTEMPTS", "CALLS", "REFUNDS",
               "REFUNDED", "DEAD LETTER", "CHECK"], table, maxw=[None, 40] + [None] * 8)

    # ---- one timeline
    rid = request_id(args.run, TIMELINE_OF)
    out.heading(f"Attempt timeline of {TIMELINE_OF} (retry_attempt_log)")
    log = psql_json(args, "SELECT attempt, event, worker, "
                    "to_char(at, 'HH24:MI:SS.MS') AS at, verdict, http_status, error_code, "
                    "latency_ms, replayed, decision, "
                    "to_char(next_attempt_at, 'HH24:MI:SS.MS') AS next_at "
                    f"FROM retry_attempt_log WHERE request_id = '{rid}' ORDER BY id")
    out.table(["ATTEMPT", "EVENT", "AT", "WORKER", "VERDICT", "HTTP", "ERROR", "LATENCY",
               "REPLAYED", "DECISION", "NEXT"],
              [[str(x["attempt"]), x["event"], x["at"], x["worker"], x["verdict"] or "",
                str(x["http_status"] or ""), x["error_code"] or "",
                f"{x['latency_ms']} ms" if x["latency_ms"] is not None else "",
                {True: "yes", False: "no", None: ""}[x["replayed"]],
                x["decision"] or "", x["next_at"] or ""] for x in log],
              maxw=[None, None, None, 28] + [None] * 7)
    sc = next(s for s in SCENARIOS if s["name"] == TIMELINE_OF)
    calls = sim(args, "GET", f"/_sim/calls?paymentKey={payment_key(args.run, sc)}")
    calls = calls.get("calls", calls) if isinstance(calls, dict) else calls
    print("  what gateway-sim saw:")
    out.table(["CALL", "AT", "STATUS", "FAULT", "REPLAYED", "IDEMPOTENCY-KEY"],
              [[str(c.get("seq")), str(c.get("at", ""))[11:23],
                str(c.get("status")) if c.get("status") is not None else "(dropped)",
                c.get("fault") or "-", "yes" if c.get("replayed") else "no",
                c.get("idempotencyKey") or ""] for c in calls])
    led = sim(args, "GET", f"/_sim/ledger/{payment_key(args.run, sc)}")
    print(f"  ledger: {len(led.get('refunds', []))} refund(s), "
          f"{fmt_amount(sum(x.get('amount', 0) for x in led.get('refunds', [])), sc['currency'])}"
          " refunded: the first attempt's refund was made, its answer lost; a later "
          "attempt with the same key got the stored answer back (replayed), no second refund")

    # ---- dead letters
    out.heading("Dead letters (the dead-letter topic)")
    if args.dlq_list:
        # The operator's own view, when cancelctl has it.
        r = subprocess.run([args.cancelctl, "--config", args.config, "dlq", "list",
                            "--since", args.since], capture_output=True, text=True)
        if r.returncode == 0:
            print("  $ cancelctl dlq list --since " + args.since)
            for line in r.stdout.rstrip("\n").splitlines():
                print("  " + line)
        else:
            print(f"  (cancelctl dlq list failed, exit {r.returncode}: {r.stderr.strip()}; "
                  "read with topic-dump instead)")
            args.dlq_list = False
    if not args.dlq_list:
        out.table(["REASON", "REQUEST", "ATTEMPTS", "FROM", "ERROR"],
                  [[m["headers"].get("dlq.reason", "?"), m["requestId"][len(prefix):],
                    m["headers"].get("dlq.attempts", "-"),
                    m["headers"].get("dlq.consumer", "?"),
                    m["headers"].get("dlq.error", "")] for m in dlq_msgs],
                  maxw=[None, None, None, None, 70])

    # ---- outcome events
    out.heading("Outcome events read back from Kafka (the outcome topic)")
    ev_rows = []
    for m in outcome_msgs:
        try:
            d = json.loads(m["value"]).get("data", {})
        except (TypeError, ValueError):
            d = {}
        le = d.get("lastError") or {}
        ev_rows.append([m["requestId"][len(prefix):], d.get("status", "?"),
                        str(d.get("attempts", "?")),
                        f"{le.get('code', '')} {le.get('httpStatus') or ''}".strip() or "-",
                        d.get("decidedAt", ""), f"{m['partition']}/{m['offset']}"])
    out.table(["REQUEST", "STATUS", "ATTEMPTS", "LAST ERROR", "DECIDED AT", "PART/OFFSET"],
              ev_rows)
    dups = [k for k, v in outcomes.items() if len(v) > 1]
    if dups:
        print(f"  (published more than once, which consumers must tolerate: "
              f"{', '.join(d[len(prefix):] for d in dups)})")

    # ---- Slack
    if args.sink:
        out.heading("Slack alerts (what slack-sink received from the alert-consumer)")
        rows = []
        for p in sink_posts(args):
            payload = p.get("payload")
            text = payload.get("text") if isinstance(payload, dict) else p.get("raw", "")
            text = " / ".join(x.strip() for x in str(text or "").splitlines() if x.strip())
            t = time.strftime("%H:%M:%S", time.localtime(p.get("atMs", 0) / 1000))
            rows.append([t, str(p.get("status", "")), text.replace(prefix, "")])
        out.table(["AT", "HTTP", "TEXT (request ids without their demo prefix)"], rows,
                  maxw=[None, None, 110])
        for name in missing_alerts(args):
            problems.append(f"{name}: no Slack alert names it")

    # ---- verdict
    out.heading("Result")
    n = len(SCENARIOS) + 1
    if problems:
        print(f"  {out.bad(f'{len(problems)} problem(s)')}:")
        for p in problems:
            print(f"    {p}")
        return 1
    print(f"  {out.good(f'all {n} scenarios ended as expected')}: every refund made once, "
          "every failure dead-lettered with its reason")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=["setup", "wait", "report"])
    p.add_argument("--run", required=True, help="run id, part of every request id")
    p.add_argument("--config", required=True)
    p.add_argument("--cancelctl", required=True)
    p.add_argument("--topic-dump", required=True)
    p.add_argument("--sim", required=True, help="gateway-sim base URL")
    p.add_argument("--psql", default="psql")
    p.add_argument("--dsn", required=True, help="libpq conninfo of the demo database")
    p.add_argument("--pids", help="directory of the processes' pid files (wait)")
    p.add_argument("--logs", help="directory of the processes' logs (wait)")
    p.add_argument("--intake-log", help="the intake-consumer's log (wait)")
    p.add_argument("--timeout", type=int, default=120, help="seconds (wait)")
    p.add_argument("--dlq-list", action="store_true",
                   help="show the dead letters with cancelctl dlq list (report)")
    p.add_argument("--sink", help="slack-sink base URL, when the alert-consumer runs")
    p.add_argument("--since", default="", help="RFC 3339 start of the run (report)")
    args = p.parse_args()
    args.sim = args.sim.rstrip("/")
    args.sink = args.sink.rstrip("/") if args.sink else None
    if args.step == "setup":
        cmd_setup(args)
        return 0
    if args.step == "wait":
        return cmd_wait(args)
    return cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
