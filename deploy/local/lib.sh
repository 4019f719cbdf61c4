# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this
# lib.sh: what deploy/local/{install,stack,test,demo} share: where the repo and
# the state live, messages, pid files, ports. Sourced, never run.

# The repo root is two levels above this file, wherever the clone lives.
CR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CR_STATE_DIR="${CR_STATE_DIR:-$CR_ROOT/.local}"
CR_LOG_DIR="$CR_STATE_DIR/logs"
CR_RUN_DIR="$CR_STATE_DIR/run"

CR_PG_PORT="${CR_PG_PORT:-55432}"
CR_KAFKA_PORT="${CR_KAFKA_PORT:-59092}"
CR_KAFKA_CONTROLLER_PORT="${CR_KAFKA_CONTROLLER_PORT:-59093}"
CR_PG_BINDIR="${CR_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
CR_KAFKA_VERSION=3.9.1
CR_KAFKA_JARS="$CR_STATE_DIR/cache/kafka-$CR_KAFKA_VERSION"
CR_BUILD_DIR="${CR_BUILD_DIR:-build}"
CR_ASAN_BUILD_DIR="${CR_ASAN_BUILD_DIR:-build-asan}"
# clang + libFuzzer build of tests/fuzz (docs/fuzzing.md).
CR_FUZZ_BUILD_DIR="${CR_FUZZ_BUILD_DIR:-build-fuzz}"
# Debian's interpreter: it has python3-jsonschema; a pyenv shim first in PATH
# would not.
CR_PYTHON="${CR_PYTHON:-/usr/bin/python3}"
# The venv of the deploy suite's PyPI tools (deploy/local/requirements-deploy.txt).
CR_DEPLOY_VENV="$CR_STATE_DIR/venv-deploy"
# Prometheus's promtool, unpacked from Debian's package by deploy/local/install
# (see there why not installed): checks deploy/prometheus and /metrics.
CR_PROMTOOL="$CR_STATE_DIR/bin/promtool"

export DEBIAN_FRONTEND=noninteractive

# Prefix every message with the script's name so interleaved output of
# install, stack and test stays readable in a CI log.
cr_prog="$(basename "${0:-deploy}")"

cr_log() { printf '[%s] %s\n' "$cr_prog" "$*" >&2; }
cr_warn() { printf '[%s] warning: %s\n' "$cr_prog" "$*" >&2; }
cr_die() {
    printf '[%s] error: %s\n' "$cr_prog" "$*" >&2
    exit 1
}

# A banner that cannot be missed in a scrolling log.
cr_loud() {
    local line
    printf '\n' >&2
    printf '%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    for line in "$@"; do
        printf '!!! %s\n' "$line" >&2
    done
    printf '%s\n\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

# Last lines of a log file, indented, for error messages.
cr_tail() {
    local file="$1" n="${2:-30}"
    if [[ -s "$file" ]]; then
        printf '[%s] --- last %s lines of %s ---\n' "$cr_prog" "$n" "$file" >&2
        tail -n "$n" "$file" | sed 's/^/    /' >&2
        printf '[%s] ---\n' "$cr_prog" >&2
    else
        printf '[%s] (%s is empty or missing)\n' "$cr_prog" "$file" >&2
    fi
}

cr_have() { command -v "$1" >/dev/null 2>&1; }

# Is the Debian package installed (dpkg's own state, not a command on PATH)?
cr_deb_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# apt-get VERB ARGS (install PACKAGE..., or build-dep DIR) without the
# Recommends, as root or through sudo -n, running apt-get update once per
# script first. On failure it says what to run by hand and returns 1.
cr_apt_updated=0
cr_apt() {
    local verb="$1" sudo_cmd=()
    shift
    local what=("$@")
    if [[ $EUID -ne 0 ]]; then
        if cr_have sudo; then
            sudo_cmd=(sudo -n)
        else
            cr_log "cannot install packages: not root and no sudo"
            cr_log "run by hand as root: apt-get update && apt-get $verb -y ${what[*]}"
            return 1
        fi
    fi
    if [[ $cr_apt_updated -eq 0 ]]; then
        cr_log "apt-get update"
        if ! "${sudo_cmd[@]}" apt-get update -q </dev/null; then
            cr_log "apt-get update failed"
            cr_log "run by hand: ${sudo_cmd[*]} apt-get update"
            return 1
        fi
        cr_apt_updated=1
    fi
    cr_log "apt-get $verb ${what[*]}"
    if ! "${sudo_cmd[@]}" apt-get "$verb" -y -q --no-install-recommends "${what[@]}" </dev/null; then
        cr_log "could not $verb: ${what[*]}"
        cr_log "run by hand: ${sudo_cmd[*]} apt-get $verb -y ${what[*]}"
        return 1
    fi
}

# Can ${CC:-clang} build a libFuzzer harness with the sanitizers the fuzz
# build uses? Compiles and links an empty one; false when clang or its
# runtime (Debian: libclang-rt-NN-dev) is missing.
cr_libfuzzer_ok() {
    local cc="${CR_FUZZ_CC:-clang}" tmp rc=0
    cr_have "$cc" || return 1
    tmp="$(mktemp -d)"
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$tmp/t.c"
    "$cc" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1 || rc=1
    rm -rf "$tmp"
    return "$rc"
}

# Is pid alive and, when a pattern is given, is its command line a match?
# The pattern guards against a recycled pid after a reboot or a crash.
cr_pid_alive() {
    local pid="$1" pattern="${2:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -n "$pattern" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    fi
    return 0
}

# Print the pid stored in pidfile if that process is alive (and matches
# pattern); a stale pid file is removed. Returns 1 when not running.
cr_pidfile_pid() {
    local file="$1" pattern="${2:-}" pid
    [[ -f "$file" ]] || return 1
    pid="$(head -n 1 "$file" 2>/dev/null || true)"
    if cr_pid_alive "$pid" "$pattern"; then
        printf '%s\n' "$pid"
        return 0
    fi
    rm -f "$file"
    return 1
}

# Send TERM, wait up to timeout seconds, then KILL. Returns once pid is gone.
cr_stop_pid() {
    local pid="$1" name="$2" timeout="${3:-30}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    cr_warn "$name (pid $pid) did not stop within ${timeout}s: sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    cr_warn "$name (pid $pid) is still there after KILL"
    return 1
}

# Does something accept TCP connections on host:port? bash's /dev/tcp needs
# no extra tool; timeout keeps a filtered port from hanging us.
cr_port_open() {
    local host="$1" port="$2"
    timeout 2 bash -c ': >"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# Wait until host:port accepts connections or timeout seconds pass.
cr_wait_port() {
    local host="$1" port="$2" timeout="$3" i
    for ((i = 0; i < timeout * 5; i++)); do
        cr_port_open "$host" "$port" && return 0
        sleep 0.2
    done
    return 1
}

# Run a command as the postgres OS user when we are root (initdb refuses
# root); as ourselves otherwise.
cr_as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Where the PostgreSQL cluster lives. Normally .local/pg; but when the repo
# sits somewhere the postgres user cannot traverse (a clone under /root, whose
# mode is 0700), the cluster moves to a directory of its own under /var/tmp,
# named after the state dir so two clones never share one. The choice is
# recorded in .local/pg/location so that stop and status find it again.
cr_pg_home() {
    local loc="$CR_STATE_DIR/pg/location" home
    if [[ -f "$loc" ]]; then
        cat "$loc"
        return 0
    fi
    mkdir -p "$CR_STATE_DIR/pg"
    home="$CR_STATE_DIR/pg"
    if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$home" 2>/dev/null; then
        home="/var/tmp/cancel-retry-pg-$(printf '%s' "$CR_STATE_DIR" | sha1sum | cut -c1-12)"
    fi
    printf '%s\n' "$home" >"$loc"
    printf '%s\n' "$home"
}

cr_pg_dsn() {
    printf 'host=127.0.0.1 port=%s user=postgres dbname=%s' "$CR_PG_PORT" "${1:-postgres}"
}

# Which Kafka runs, or would run: "kafka" (Apache Kafka) or "mock" (the
# in-memory librdkafka mock cluster). A running one wins over the preference.
cr_kafka_running_mode() {
    if cr_pidfile_pid "$CR_RUN_DIR/kafka.pid" 'kafka.Kafka' >/dev/null; then
        echo kafka
    elif cr_pidfile_pid "$CR_RUN_DIR/mock-broker.pid" 'mock-broker' >/dev/null; then
        echo mock
    else
        return 1
    fi
}

cr_kafka_wanted_mode() {
    case "${CR_KAFKA_MODE:-auto}" in
    kafka | mock) echo "$CR_KAFKA_MODE" ;;
    auto | "")
        if cr_have java && [[ -f "$CR_KAFKA_JARS/.complete" ]]; then echo kafka; else echo mock; fi
        ;;
    *) cr_die "CR_KAFKA_MODE must be kafka, mock or auto, not \"$CR_KAFKA_MODE\"" ;;
    esac
}

# The bootstrap address clients should use now.
cr_kafka_bootstrap() {
    local mode
    mode="$(cr_kafka_running_mode || cr_kafka_wanted_mode)"
    if [[ "$mode" == mock && -s "$CR_STATE_DIR/kafka/mock.bootstrap" ]]; then
        head -n 1 "$CR_STATE_DIR/kafka/mock.bootstrap"
    else
        printf '127.0.0.1:%s\n' "$CR_KAFKA_PORT"
    fi
}
