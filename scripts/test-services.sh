#!/usr/bin/env bash
# Local services for the object-store tests: moto (S3 + DynamoDB on one port). moto's
# conditional creates are not atomic under concurrent requests, so it runs one request at a
# time (scripts/moto-serial.py); VECSHARD_MOTO_SERIAL=0 runs plain moto_server.
#
#   scripts/test-services.sh start   install moto into .venv/ (once), start it on a free port,
#                                    wait until it answers, create the test bucket, print env
#   scripts/test-services.sh env     print the env of the running server (`eval "$(… env)"`)
#   scripts/test-services.sh stop    stop the server started by `start` (pid file)
#
# Typical use (the project's test command does this):
#   eval "$(scripts/test-services.sh start)"
#   cargo test -p vecshard-engine --features object-store,dynamodb
#   scripts/test-services.sh stop
#
# State lives in .tools/test-services/ at the repository root (pid, port, log).
# Everything the script prints on stdout is `export` lines; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VECSHARD_VENV:-$ROOT/.venv}"
STATE="$ROOT/.tools/test-services"
PIDFILE="$STATE/moto.pid"
PORTFILE="$STATE/moto.port"
LOG="$STATE/moto.log"
BUCKET="${VECSHARD_TEST_S3_BUCKET:-vecshard-test}"
MOTO_SPEC="${VECSHARD_MOTO_SPEC:-moto[server]}"
READY_TIMEOUT_S="${VECSHARD_MOTO_READY_TIMEOUT_S:-60}"

log() { echo "test-services: $*" >&2; }

install_moto() {
    if [[ -x "$VENV/bin/moto_server" ]] && "$VENV/bin/python" -c 'import moto, flask' 2>/dev/null; then
        return
    fi
    log "installing $MOTO_SPEC into $VENV (about 1-2 minutes, once)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet "$MOTO_SPEC" >&2
}

free_port() {
    "$VENV/bin/python" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

print_env() {
    local port
    port="$(cat "$PORTFILE")"
    local url="http://127.0.0.1:$port"
    cat <<EOF
export VECSHARD_TEST_S3_ENDPOINT=$url
export VECSHARD_TEST_S3_BUCKET=$BUCKET
export VECSHARD_TEST_DYNAMODB_ENDPOINT=$url
export AWS_ENDPOINT_URL=$url
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
EOF
}

# Poll until the server answers HTTP (any status), or give up after READY_TIMEOUT_S.
wait_ready() {
    local url="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
    until curl -s -o /dev/null --max-time 2 "$url/"; do
        if ! running; then
            log "moto_server exited during start; log follows"
            cat "$LOG" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "moto_server did not answer on $url within ${READY_TIMEOUT_S}s; log: $LOG"
            exit 1
        fi
        sleep 0.1 # poll interval, not a wait for readiness
    done
}

start() {
    install_moto
    mkdir -p "$STATE"
    if running; then
        log "moto already running (pid $(cat "$PIDFILE"), port $(cat "$PORTFILE"))"
    else
        local port
        port="$(free_port)"
        echo "$port" > "$PORTFILE"
        # setsid: the server outlives this script and is not hit by the caller's Ctrl-C.
        # moto-serial.py: moto with one request at a time, so racing conditional creates
        # have one winner as on a real store; plain moto_server with
        # VECSHARD_MOTO_SERIAL=0, or if this moto lacks the modules it wraps.
        if [[ "${VECSHARD_MOTO_SERIAL:-1}" == 1 ]] && "$VENV/bin/python" -c 'import moto.moto_server.werkzeug_app as w; w.DomainDispatcherApplication, w.MotoRequestHandler, w.create_backend_app' 2>/dev/null; then
            setsid "$VENV/bin/python" "$ROOT/scripts/moto-serial.py" 127.0.0.1 "$port" > "$LOG" 2>&1 < /dev/null &
        else
            setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$LOG" 2>&1 < /dev/null &
        fi
        echo $! > "$PIDFILE"
        log "started moto_server pid $! on port $port"
    fi
    local url
    url="http://127.0.0.1:$(cat "$PORTFILE")"
    wait_ready "$url"
    # Creating an existing bucket is fine for moto (us-east-1 answers 200).
    curl -sf -o /dev/null -X PUT "$url/$BUCKET" || { log "could not create bucket $BUCKET"; exit 1; }
    log "ready: $url, bucket $BUCKET"
    print_env
}

stop() {
    if running; then
        local pid
        pid="$(cat "$PIDFILE")"
        kill "$pid"
        # Wait for it to go (bounded), without a fixed sleep.
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05 # poll interval
        done
        log "stopped moto_server pid $pid"
    else
        log "moto is not running"
    fi
    rm -f "$PIDFILE" "$PORTFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env)
        running || { log "moto is not running; run: $0 start"; exit 1; }
        print_env
        ;;
    *)
        echo "usage: $0 start|stop|env" >&2
        exit 2
        ;;
esac
