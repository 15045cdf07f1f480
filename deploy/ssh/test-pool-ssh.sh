#!/bin/sh
# Tests pool-ssh.sh on this machine, through test-local-ssh.sh (a stand-in for ssh that runs the
# remote command locally), in a temporary folder.
#
#   sh deploy/ssh/test-pool-ssh.sh                          # with a stub worker (a shell script)
#   sh deploy/ssh/test-pool-ssh.sh WORKER [PRODUCER]        # with real binaries; with PRODUCER,
#                                                           # also a whole run on ports 6557-6559
# PORT_BASE=N moves the run's ports to N, N+1, N+2. Every worker it starts is stopped by its pid
# file at the end, whatever happened.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
pool="$here/pool-ssh.sh"
fake_ssh="$here/test-local-ssh.sh"
worker=${1:-}
producer=${2:-}
port=${PORT_BASE:-6557}

tmp=$(mktemp -d)
FAKE_SSH_HOME="$tmp/home"
export FAKE_SSH_HOME
mkdir -p "$FAKE_SSH_HOME"
passed=0
failed=0

pool() {
    bash "$pool" --ssh "$fake_ssh" --connect-timeout 5 --stop-timeout 20 "$@"
}
cleanup() {
    pool stop "$tmp/hosts" >/dev/null 2>&1 || true
    # If stop itself is what broke, end what is left by the pids recorded (and only those).
    for pid_file in "$FAKE_SSH_HOME"/.zmq-worker-pool/*.pid; do
        if [ -f "$pid_file" ]; then kill -KILL "$(head -n 1 "$pid_file")" 2>/dev/null || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME EXPECTED-STATUS PATTERN COMMAND...: runs COMMAND, wants its status and a line
# matching PATTERN (grep -E) in its output.
check() {
    name=$1 expected=$2 pattern=$3
    shift 3
    status=0
    "$@" >"$tmp/out" 2>&1 || status=$?
    if [ "$status" -eq "$expected" ] && grep -Eq "$pattern" "$tmp/out"; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        echo "FAILED: $name (status $status, wanted $expected and /$pattern/); output:"
        sed 's/^/    /' "$tmp/out"
    fi
}

if [ -z "$worker" ]; then
    # A stand-in worker: runs until SIGTERM, then exits 0 (as the real one does).
    worker="$tmp/worker"
    cat >"$worker" <<'EOF'
#!/bin/sh
trap 'exit 0' TERM INT
while :; do sleep 1 & wait $! || true; done
EOF
    chmod +x "$worker"
fi
endpoints="--tasks tcp://127.0.0.1:$port --results tcp://127.0.0.1:$((port + 1)) --events tcp://127.0.0.1:$((port + 2))"

cat >"$tmp/hosts" <<'EOF'
# three "hosts", all this machine
alpha            # one process
2/bob@beta
  carol@gamma
EOF
printf 'unreachable-host\n' >"$tmp/bad-hosts"
printf 'delta\n' >"$tmp/other-hosts"

# shellcheck disable=SC2086 # $endpoints is meant to split into words
check "start on three hosts" 0 '^bob@beta: ok: started' pool --worker-path "$worker" start "$tmp/hosts" -- $endpoints
check "pid files written" 0 'alpha.pid' ls "$FAKE_SSH_HOME/.zmq-worker-pool"
check "status: all running" 0 '^carol@gamma: running: pid [0-9]+' pool status "$tmp/hosts"
check "N/ prefix gives --processes" 0 '^2$' sh -c "tr '\\0' '\\n' </proc/\$(head -n 1 '$FAKE_SSH_HOME/.zmq-worker-pool/bob@beta.pid')/cmdline | grep -A1 -x -- --processes | tail -n 1"
check "second start refused" 1 '^alpha: FAILED: already running' pool --worker-path "$worker" start "$tmp/hosts"
check "unreachable host reported" 1 '^unreachable-host: FAILED: ssh failed' pool status "$tmp/bad-hosts"
check "missing worker reported" 1 '^delta: FAILED: no-such-worker-binary: not found' pool --worker-path no-such-worker-binary start "$tmp/other-hosts"
if [ -n "$producer" ]; then
    # A whole run: the producer waits for the 4 processes, and its shutdown ends every worker.
    check "a run with the pool" 0 'Summary: 200 tasks, 0 failed' timeout 120 "$producer" --generate 200 \
        --output none --progress never --wait-workers 4 \
        --tasks "tcp://*:$port" --results "tcp://*:$((port + 1))" --events "tcp://*:$((port + 2))"
    sleep 1
    check "status after the run: ended" 1 '^alpha: stopped: pid [0-9]+ has ended' pool status "$tmp/hosts"
else
    check "stop" 0 '^alpha: ok: stopped \(pid' pool stop "$tmp/hosts"
    check "status after stop" 1 '^bob@beta: stopped: no pid file' pool status "$tmp/hosts"
fi
check "stop is idempotent" 0 '^alpha: ok: not running' pool stop "$tmp/hosts"

echo "test-pool-ssh: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
