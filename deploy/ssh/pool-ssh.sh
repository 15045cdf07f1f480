#!/usr/bin/env bash
# pool-ssh.sh: start, stop and check ZeroMQ pool workers on many machines over ssh, the way
# GNU parallel's --sshlogin does: a host file, one [user@]host a line.
#
#   pool-ssh.sh [OPTIONS] start HOSTFILE [-- WORKER-ARGS...]
#   pool-ssh.sh [OPTIONS] stop HOSTFILE
#   pool-ssh.sh [OPTIONS] status HOSTFILE
#
# HOSTFILE: one [user@]host per line, `#` starts a comment, and an optional `N/` prefix (as in
# parallel's `4/host`) runs N worker processes there (`--processes N`). For example:
#   # the lab
#   4/alice@node1
#   8/node2
#   node3                 # --processes as in WORKER-ARGS, or the worker's default (1)
#
# start runs `nohup WORKER WORKER-ARGS >DIR/LOGIN.log 2>&1 &` on every host at once and keeps
# the pid in DIR/LOGIN.pid; stop sends SIGTERM to that pid only (the worker finishes the task in
# hand and exits 0), never to processes found by name; status tells whether it is alive.
# Each line of the report is `LOGIN: ok|FAILED|running|stopped: ...`. Exit status: 0 when every
# host succeeded (for status: every worker runs), 1 otherwise, 2 on bad usage.
#
# Options (before the subcommand or after it, but before `--`):
#   --worker-path PATH     the worker binary on the remote hosts (default: `worker` on PATH)
#   --copy FILE            copy this local worker binary to DIR/bin/worker on every host first,
#                          and run that one (start only)
#   --dir DIR              remote state directory (default: ~/.zmq-worker-pool)
#   --ssh COMMAND          the ssh program (default: ssh); called as
#                          COMMAND -o BatchMode=yes -o ConnectTimeout=N LOGIN REMOTE-COMMAND
#   --connect-timeout N    ssh ConnectTimeout in seconds (default: 10)
#   --stop-timeout N       seconds stop waits for a worker to exit (default: 60)
#   -h, --help             this help
#
# Example:
#   pool-ssh.sh --copy .build/release/worker start hosts.txt -- --connect 192.0.2.10 --threads 2
#   pool-ssh.sh status hosts.txt
#   pool-ssh.sh stop hosts.txt
set -euo pipefail

program=${0##*/}
ssh_command=ssh
worker_path=worker
# Expanded on the remote host (by the remote script below), not here.
# shellcheck disable=SC2088
state_dir='~/.zmq-worker-pool'
copy_file=""
connect_timeout=10
stop_timeout=60

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$0"
}

die() {
    printf '%s: %s\n' "$program" "$*" >&2
    exit 2
}

# Quotes each argument for a POSIX shell, joined by spaces.
shell_quote() {
    local word quoted=""
    for word in "$@"; do
        quoted+="'${word//\'/\'\\\'\'}' "
    done
    printf '%s' "${quoted% }"
}

# ---- remote scripts (POSIX sh, run as `sh -c SCRIPT sh DIR NAME ...` on the host) -------------
# The prelude expands a leading ~ in DIR, names the pid and log files, and defines `alive PID
# START`: the process exists, is no zombie and, where /proc exists, started at the recorded time
# (so a pid reused by another process is never taken for the worker).
# shellcheck disable=SC2016
remote_prelude='
expand_home() { case $1 in "~") printf %s "$HOME" ;; "~/"*) printf %s/%s "$HOME" "${1#"~/"}" ;; *) printf %s "$1" ;; esac; }
dir=$(expand_home "$1"); name=$2; shift 2
pid_file=$dir/$name.pid; log_file=$dir/$name.log
start_time() {
    [ -r "/proc/$1/stat" ] || { echo -; return; }
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
    stat=${stat##*) }
    set -f; set -- $stat; set +f
    if [ "$1" = Z ]; then echo gone; else echo "${20}"; fi
}
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$2" = - ] || [ "$(start_time "$1")" = "$2" ]
}
read_pid_file() {
    pid=""; started=""
    [ -f "$pid_file" ] || return 1
    { read -r pid; read -r started; } < "$pid_file" || true
    case $pid in "" | *[!0-9]*) return 1 ;; esac
    [ -n "$started" ] || started=-
}
'

# $3: the worker path; then the worker's arguments.
# shellcheck disable=SC2016
remote_start='
worker=$(expand_home "$1"); shift
mkdir -p "$dir" || { echo "cannot make $dir"; exit 1; }
if read_pid_file && alive "$pid" "$started"; then echo "already running (pid $pid)"; exit 1; fi
case $worker in
    */*) [ -x "$worker" ] || { echo "$worker: not an executable file"; exit 1; } ;;
    *) command -v "$worker" >/dev/null 2>&1 || { echo "$worker: not found on PATH (use --worker-path or --copy)"; exit 1; } ;;
esac
nohup "$worker" "$@" </dev/null >"$log_file" 2>&1 &
pid=$!
printf "%s\n%s\n" "$pid" "$(start_time "$pid")" > "$pid_file"
sleep 1
if ! kill -0 "$pid" 2>/dev/null; then
    status=0; wait "$pid" || status=$?
    rm -f "$pid_file"
    echo "worker exited at once (status $status); the end of $log_file:"
    tail -n 5 "$log_file"
    exit 1
fi
echo "started (pid $pid, log $log_file)"
'

# $3: seconds to wait.
# shellcheck disable=SC2016
remote_stop='
timeout=$1
if ! read_pid_file; then echo "not running (no pid file)"; exit 0; fi
if ! alive "$pid" "$started"; then rm -f "$pid_file"; echo "not running (stale pid file: $pid)"; exit 0; fi
kill -TERM "$pid" 2>/dev/null || true
waited=0
while alive "$pid" "$started"; do
    if [ "$waited" -ge "$timeout" ]; then echo "still running ${timeout}s after SIGTERM (pid $pid)"; exit 1; fi
    sleep 1; waited=$((waited + 1))
done
rm -f "$pid_file"
echo "stopped (pid $pid)"
'

# shellcheck disable=SC2016
remote_status='
if read_pid_file && alive "$pid" "$started"; then echo "pid $pid, log $log_file"; exit 0; fi
if [ -n "$pid" ]; then echo "pid $pid has ended (log $log_file)"; else echo "no pid file"; fi
exit 3
'

# Reads stdin (the local binary) into DIR/bin/worker, atomically.
# shellcheck disable=SC2016
remote_copy='
mkdir -p "$dir/bin" || exit 1
tmp=$dir/bin/.worker.$$
if cat > "$tmp" && chmod 755 "$tmp" && mv -f "$tmp" "$dir/bin/worker"; then exit 0; fi
rm -f "$tmp"; echo "copy to $dir/bin/worker failed"; exit 1
'

# ---- arguments -----------------------------------------------------------------------------
command_name=""
host_file=""
worker_args=()
need_value() { [[ $# -ge 2 ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --worker-path) need_value "$@"; worker_path=$2; shift 2 ;;
        --worker-path=*) worker_path=${1#*=}; shift ;;
        --copy) need_value "$@"; copy_file=$2; shift 2 ;;
        --copy=*) copy_file=${1#*=}; shift ;;
        --dir) need_value "$@"; state_dir=$2; shift 2 ;;
        --dir=*) state_dir=${1#*=}; shift ;;
        --ssh) need_value "$@"; ssh_command=$2; shift 2 ;;
        --ssh=*) ssh_command=${1#*=}; shift ;;
        --connect-timeout) need_value "$@"; connect_timeout=$2; shift 2 ;;
        --connect-timeout=*) connect_timeout=${1#*=}; shift ;;
        --stop-timeout) need_value "$@"; stop_timeout=$2; shift 2 ;;
        --stop-timeout=*) stop_timeout=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; worker_args=("$@"); break ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *)
            if [[ -z $command_name ]]; then command_name=$1
            elif [[ -z $host_file ]]; then host_file=$1
            else die "unexpected argument: $1 (worker arguments go after --)"
            fi
            shift ;;
    esac
done
case $command_name in
    start | stop | status) ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown subcommand: $command_name (start, stop or status)" ;;
esac
[[ -n $host_file ]] || die "$command_name needs a HOSTFILE"
[[ -r $host_file ]] || die "cannot read $host_file"
[[ $connect_timeout =~ ^[0-9]+$ ]] || die "--connect-timeout needs whole seconds"
[[ $stop_timeout =~ ^[0-9]+$ ]] || die "--stop-timeout needs whole seconds"
if [[ $command_name != start ]]; then
    [[ ${#worker_args[@]} -eq 0 ]] || die "worker arguments are for start only"
    [[ -z $copy_file ]] || die "--copy is for start only"
fi
if [[ -n $copy_file ]]; then
    [[ -f $copy_file && -r $copy_file ]] || die "--copy: cannot read $copy_file"
    worker_path=$state_dir/bin/worker
fi
command -v "$ssh_command" >/dev/null 2>&1 || die "ssh command not found: $ssh_command"

# ---- host file -----------------------------------------------------------------------------
logins=()
processes=()
line_number=0
# Letters, digits and . _ - @ % : [ ] (user@host, IPv6 addresses); no spaces, no leading -.
login_pattern='^[][A-Za-z0-9_.@%:-]+$'
while IFS= read -r line || [[ -n $line ]]; do
    line_number=$((line_number + 1))
    line=${line%%#*}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -n $line ]] || continue
    count=""
    login=$line
    if [[ $line =~ ^([0-9]+)/(.*)$ ]]; then
        count=${BASH_REMATCH[1]}
        login=${BASH_REMATCH[2]}
        [[ $count -ge 1 ]] || die "$host_file:$line_number: process count must be at least 1"
    fi
    [[ $login == ":" ]] && die "$host_file:$line_number: ':' (this machine) is not supported; name it, e.g. localhost"
    [[ $login =~ $login_pattern && $login != -* ]] \
        || die "$host_file:$line_number: not a [user@]host: $line"
    for seen in "${logins[@]}"; do
        [[ $seen != "$login" ]] || die "$host_file:$line_number: $login is listed twice"
    done
    logins+=("$login")
    processes+=("$count")
done < "$host_file"
[[ ${#logins[@]} -gt 0 ]] || die "$host_file lists no host"

# (The ${a[@]+"${a[@]}"} form keeps an empty array from tripping `set -u` in bash before 4.4.)
for arg in ${worker_args[@]+"${worker_args[@]}"}; do
    if [[ $arg == --processes || $arg == --processes=* ]]; then
        for count in "${processes[@]}"; do
            [[ -z $count ]] || die "a host has an N/ prefix and WORKER-ARGS give --processes: use one"
        done
    fi
done

# ---- run on every host at once -------------------------------------------------------------
run_ssh() { # LOGIN REMOTE-SCRIPT ARGS... (stdin goes to the remote command)
    local login=$1 script=$2
    shift 2
    local name=${login//[!A-Za-z0-9._@-]/_}
    "$ssh_command" -o BatchMode=yes -o ConnectTimeout="$connect_timeout" "$login" \
        "sh -c $(shell_quote "$remote_prelude$script") sh $(shell_quote "$state_dir" "$name" "$@")"
}

on_host() { # INDEX: one host's whole job; its output is the report line's message
    local login=${logins[$1]} count=${processes[$1]}
    case $command_name in
        start)
            local args=(${worker_args[@]+"${worker_args[@]}"})
            [[ -z $count ]] || args+=(--processes "$count")
            if [[ -n $copy_file ]]; then
                run_ssh "$login" "$remote_copy" <"$copy_file" || return
            fi
            run_ssh "$login" "$remote_start" "$worker_path" ${args[@]+"${args[@]}"} </dev/null
            ;;
        stop) run_ssh "$login" "$remote_stop" "$stop_timeout" </dev/null ;;
        status) run_ssh "$login" "$remote_status" </dev/null ;;
    esac
}

work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT
job_pids=()
for i in "${!logins[@]}"; do
    on_host "$i" >"$work_dir/$i.out" 2>&1 &
    job_pids+=($!)
done

failures=0
for i in "${!logins[@]}"; do
    status=0
    wait "${job_pids[$i]}" || status=$?
    message=$(tr '\n' ' ' <"$work_dir/$i.out")
    message=${message% }
    if [[ $command_name == status ]]; then
        case $status in
            0) verdict=running ;;
            3) verdict=stopped ;;
            *) verdict=FAILED ;;
        esac
    elif [[ $status -eq 0 ]]; then
        verdict=ok
    else
        verdict=FAILED
    fi
    [[ $status -ne 255 ]] || message="ssh failed: $message"
    [[ $status -eq 0 ]] || failures=$((failures + 1))
    printf '%s: %s: %s\n' "${logins[$i]}" "$verdict" "${message:-(no output, status $status)}"
done

total=${#logins[@]}
if [[ $failures -gt 0 ]]; then
    printf '%s: %s: %d of %d hosts did not succeed\n' "$program" "$command_name" "$failures" "$total" >&2
    exit 1
fi
