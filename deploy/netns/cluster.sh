#!/usr/bin/env bash
# cluster.sh: simulated hosts on one Linux machine, one network namespace per host, all on a
# bridge in the root namespace, for multi-host tests and benchmarks of the producer/worker pool.
# See deploy/netns/README.md, or run `cluster.sh --help`.
set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_ROOT=${ZWP_NETNS_STATE:-/run/zwp-netns}
NFQ_NUM=7              # NFQUEUE number used inside each host namespace (queues are per namespace)
MAX_HOSTS=244          # addresses SUBNET.11 .. SUBNET.254

usage() {
  cat <<EOF
Usage: $PROG COMMAND --name TAG [options]

Simulated hosts in network namespaces, bridged to the root namespace.

Commands:
  up      --name TAG --hosts N [--subnet A.B.C]
          Create bridge zb-TAG (A.B.C.1/24, in the root namespace) and namespaces
          zwp-TAG-h1..hN, host I at A.B.C.(10+I)/24 on eth0, default route via A.B.C.1.
          The subnet defaults to 10.99.X with X derived from TAG.
  down    --name TAG [--grace SEC]
          Stop what spawn started (TERM, then KILL after --grace, default 5), delete the
          namespaces, links, bridge, firewall rules and state. Exits 0 if TAG is not up.
  netem   --name TAG --host I [--delay MS] [--jitter MS] [--loss PCT] [--rate RATE]
          [--backend auto|netem|nfqueue] | --clear
          Impair host I's link in both directions: every packet to or from the host is
          delayed MS (so a round trip to it gains 2*MS), lost with PCT %, and each direction
          is limited to RATE (tc units: 10mbit, 1gbit). Replaces earlier settings.
  cut     --name TAG --host I      Take host I's link down (TCP connections survive).
  restore --name TAG --host I      Bring it back.
  exec    --name TAG --host I -- CMD...
          Run CMD inside host I's namespace in the foreground; exits with its status.
  spawn   --name TAG --host I [--log FILE] -- CMD...
          Start CMD in the background inside host I (own session and process group), record
          it for down, print its PID. Output goes to FILE (default in the state directory).
          CMD runs in / with no inherited descriptors: give absolute paths.
  wait    --name TAG [--host I] [--timeout SEC]
          Wait until the processes spawned (on host I) have exited; 124 on timeout.
  status  --name TAG               Hosts, addresses, links, impairments, spawned processes.
  addr    --name TAG --host I      Print host I's address; --host 0 or --bridge: the bridge's.

TAG is 1-5 characters [a-z0-9]; several clusters with different tags can coexist.
State is kept in $STATE_ROOT/TAG/ (env, hosts, procs, ...).
Exit status: 0 ok, 1 failure, 2 usage error, not root, or ip missing.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }
info() { echo "$PROG: $*" >&2; }

require_root() {
  if [[ $EUID -ne 0 ]]; then
    echo "$PROG: must run as root (network namespaces, links and tc need CAP_NET_ADMIN); try sudo" >&2
    exit 2
  fi
  if ! command -v ip >/dev/null 2>&1; then
    echo "$PROG: 'ip' (iproute2) not found; install it (apt-get install iproute2)" >&2
    exit 2
  fi
}

# ---------------------------------------------------------------------------------------------
# Names and state

ns_name() { echo "zwp-$TAG-h$1"; }
veth_name() { echo "zv-$TAG-$1"; }
bridge_name() { echo "zb-$TAG"; }
state_dir() { echo "$STATE_ROOT/$TAG"; }

default_subnet() {
  local sum
  sum=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
  echo "10.99.$((sum % 200 + 20))"
}

is_up() { [[ -f $(state_dir)/env ]]; }

load_state() {
  is_up || die "cluster '$TAG' is not up (no $(state_dir)/env)"
  SUBNET=$(sed -n 's/^SUBNET=//p' "$(state_dir)/env")
  HOSTS=$(sed -n 's/^HOSTS=//p' "$(state_dir)/env")
}

check_host() {   # normalises HOST ("2" or "h2") and checks it against the cluster
  HOST=${HOST#h}
  [[ $HOST =~ ^[0-9]+$ ]] || usage_error "--host must be a number (1..N)"
  HOST=$((10#$HOST))
  if [[ ${1:-} == allow0 && $HOST -eq 0 ]]; then return 0; fi
  ((HOST >= 1 && HOST <= HOSTS)) || die "cluster '$TAG' has hosts 1..$HOSTS, not $HOST"
}

# start time of a process (field 22 of /proc/PID/stat), empty if it is gone
proc_start() {
  local stat rest
  local -a f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  rest=${stat##*) }
  read -ra f <<<"$rest"
  [[ ${f[0]} == Z || ${f[0]} == X ]] && return 0   # exited, not yet reaped
  echo "${f[19]}"
}

# is PID (recorded with start time START) still that same process?
alive() { [[ -n $2 && $(proc_start "$1") == "$2" ]]; }

now_ms() {   # wall clock in milliseconds (bash 5's EPOCHREALTIME; date otherwise)
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    echo $((10#$t / 1000))
  else
    echo $(($(date +%s%N) / 1000000))
  fi
}

# live (non-zombie) processes whose process group is one of the given PGIDs, one pass over /proc
group_members() {
  (($#)) || return 0
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v want=" $* " '{
    pid = $1; sub(/^.*\) /, "")            # drop "pid (comm) ", comm may hold spaces
    if ($1 != "Z" && $1 != "X" && index(want, " " $3 " ")) print pid
  }'
}

# ---------------------------------------------------------------------------------------------
# Firewall: bridged traffic between hosts passes the FORWARD chain when br_netfilter is on
# (net.bridge.bridge-nf-call-iptables=1); traffic to and from the bridge address passes INPUT
# and OUTPUT. Where such a chain could drop (policy not ACCEPT, or any rule in it), an ACCEPT
# rule for the bridge is put first, tagged with a comment, and recorded for down.

fw_backends() {
  if [[ -r /proc/net/ip_tables_names ]] && grep -qx filter /proc/net/ip_tables_names; then
    if command -v iptables-legacy >/dev/null 2>&1; then
      echo iptables-legacy
    elif command -v iptables >/dev/null 2>&1 && iptables -V 2>/dev/null | grep -q legacy; then
      echo iptables
    else
      info "warning: legacy iptables filter table is active but no iptables-legacy to inspect it"
    fi
  fi
  if command -v iptables-nft >/dev/null 2>&1; then
    echo iptables-nft
  elif command -v iptables >/dev/null 2>&1 && iptables -V 2>/dev/null | grep -q nf_tables; then
    echo iptables
  fi
}

fw_comment() { echo "zwp-netns-$TAG"; }

fw_allow() {
  local br brnf bin chain listing policy nrules
  br=$(bridge_name)
  brnf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)
  while read -r bin; do
    [[ -n $bin ]] || continue
    for chain in INPUT OUTPUT FORWARD; do
      if [[ $chain == FORWARD && $brnf != 1 ]]; then continue; fi
      listing=$("$bin" -w -S "$chain" 2>/dev/null) || continue
      policy=$(awk '$1 == "-P" {print $3}' <<<"$listing")
      nrules=$(grep -c '^-A' <<<"$listing" || true)
      if [[ $policy == ACCEPT && $nrules -eq 0 ]]; then continue; fi
      local -a match
      case $chain in
        INPUT) match=(-i "$br") ;;
        OUTPUT) match=(-o "$br") ;;
        FORWARD) match=(-i "$br" -o "$br") ;;
      esac
      "$bin" -w -I "$chain" 1 "${match[@]}" -m comment --comment "$(fw_comment)" -j ACCEPT
      echo "$bin $chain ${match[*]} -m comment --comment $(fw_comment) -j ACCEPT" >>"$(state_dir)/fw"
      info "added $bin rule: $chain ${match[*]} -j ACCEPT (policy $policy, $nrules rule(s) in chain)"
    done
  done < <(fw_backends)
  if command -v nft >/dev/null 2>&1; then
    # chains of native nftables (not iptables-nft's 'ip filter') that drop by default
    if nft list ruleset 2>/dev/null | awk '/^table / {t = $2 " " $3} /hook (input|forward|output).*policy drop/ && t != "ip filter" {found = 1} END {exit !found}'; then
      info "warning: an nftables chain with 'policy drop' exists; if hosts cannot reach $br, allow iifname/oifname \"$br\" there"
    fi
  fi
}

fw_remove() {
  local file bin chain rest
  local -a spec
  file=$(state_dir)/fw
  if [[ -f $file ]]; then
    while read -r bin chain rest; do
      [[ -n $bin ]] || continue
      read -ra spec <<<"$rest"
      "$bin" -w -D "$chain" "${spec[@]}" 2>/dev/null || true
    done <"$file"
  fi
  # sweep: rules carrying this cluster's comment (e.g. left by an interrupted run)
  while read -r bin; do
    [[ -n $bin ]] || continue
    while read -r _ chain rest; do
      read -ra spec <<<"$rest"
      "$bin" -w -D "$chain" "${spec[@]}" 2>/dev/null || true
    done < <("$bin" -w -S 2>/dev/null | grep -E -- "--comment \"?$(fw_comment)\"? " || true)
  done < <(fw_backends)
}

# ---------------------------------------------------------------------------------------------
# up / down

cluster_exists() {   # state, bridge, any host namespace or veth of this tag
  [[ -e $(state_dir) || -e /sys/class/net/$(bridge_name) ]] && return 0
  compgen -G "/run/netns/zwp-$TAG-h*" >/dev/null && return 0
  compgen -G "/sys/class/net/zv-$TAG-*" >/dev/null && return 0
  return 1
}

subnet_in_use() {
  ip -o -4 addr show 2>/dev/null | awk '{print $4}' | grep -q "^${SUBNET//./\\.}\." && return 0
  [[ -n $(ip -4 route show "$SUBNET.0/24" 2>/dev/null) ]]
}

cmd_up() {
  require_root
  [[ -n ${HOSTS:-} ]] || usage_error "up needs --hosts N"
  if ! [[ $HOSTS =~ ^[0-9]+$ ]] || ((10#$HOSTS < 1 || 10#$HOSTS > MAX_HOSTS)); then
    usage_error "--hosts must be 1..$MAX_HOSTS"
  fi
  HOSTS=$((10#$HOSTS))
  SUBNET=${SUBNET:-$(default_subnet "$TAG")}
  local o
  [[ $SUBNET =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || usage_error "--subnet must look like 10.99.7 (three octets)"
  for o in "${BASH_REMATCH[@]:1}"; do ((10#$o <= 255)) || usage_error "--subnet octet $o > 255"; done
  if cluster_exists; then
    die "cluster '$TAG' already exists (run: $PROG down --name $TAG)"
  fi
  if subnet_in_use; then
    die "subnet $SUBNET.0/24 is already in use on this machine; pick another with --subnet"
  fi

  local sd br i ns veth
  sd=$(state_dir)
  br=$(bridge_name)
  UP_DONE=0
  trap 'up_cleanup' EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$sd"
  : >"$sd/procs"

  ip link add "$br" type bridge stp_state 0 forward_delay 0
  ip addr add "$SUBNET.1/24" dev "$br"
  ip link set "$br" up
  for ((i = 1; i <= HOSTS; i++)); do
    ns=$(ns_name "$i")
    veth=$(veth_name "$i")
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$br" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$SUBNET.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$SUBNET.1"
    printf '%s\t%s\t%s\t%s\n' "$i" "$ns" "$veth" "$SUBNET.$((10 + i))" >>"$sd/hosts.tmp"
  done
  fw_allow
  mv "$sd/hosts.tmp" "$sd/hosts"
  {
    echo "TAG=$TAG"
    echo "SUBNET=$SUBNET"
    echo "HOSTS=$HOSTS"
    echo "BRIDGE=$br"
    echo "BRIDGE_ADDR=$SUBNET.1"
  } >"$sd/env"
  UP_DONE=1
  trap - EXIT INT TERM
  echo "cluster $TAG up: bridge $br $SUBNET.1/24, hosts h1..h$HOSTS at $SUBNET.11..$SUBNET.$((10 + HOSTS)) (namespaces zwp-$TAG-hI)"
}

up_cleanup() {
  local rc=$?
  if [[ ${UP_DONE:-0} != 1 ]]; then
    info "up failed; removing what was created"
    teardown 2 || true
    [[ $rc -ne 0 ]] || rc=1
  fi
  exit "$rc"
}

# kill everything spawned for this cluster (each spawn leads its own process group) and
# everything still inside its namespaces: TERM, then KILL after GRACE seconds
stop_processes() {
  local grace=$1 sd pid start f p deadline
  sd=$(state_dir)
  local -a groups=() left=()
  for f in "$sd/procs" "$sd"/delay-h*.pid; do
    [[ -f $f ]] || continue
    while read -r pid start _; do
      [[ $pid =~ ^[0-9]+$ ]] || continue
      # the leader itself if it is still the process we started, else whatever is left of its
      # group (children keep the group id after the leader exits)
      if alive "$pid" "$start" || [[ -z $(proc_start "$pid") ]]; then groups+=("$pid"); fi
    done <"$f"
  done
  remaining() {
    local ns
    group_members "${groups[@]}"
    for ns in /run/netns/zwp-"$TAG"-h*; do
      [[ -e $ns ]] || continue
      ip netns pids "${ns##*/}" 2>/dev/null || true
    done
  }
  mapfile -t left < <(remaining | sort -u)
  ((${#left[@]})) || return 0
  for p in "${groups[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in "${left[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  deadline=$(($(now_ms) + grace * 1000))
  while (($(now_ms) < deadline)); do
    sleep 0.05
    mapfile -t left < <(remaining | sort -u)
    ((${#left[@]})) || return 0
  done
  info "${#left[@]} process(es) still running after ${grace}s; sending KILL"
  for p in "${groups[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  for p in "${left[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  sleep 0.1
}

teardown() {
  local grace=$1 l ns
  stop_processes "$grace"
  for l in /sys/class/net/zv-"$TAG"-*; do
    [[ -e $l ]] || continue
    [[ ${l##*/} =~ ^zv-$TAG-[0-9]+$ ]] || continue
    ip link del "${l##*/}" 2>/dev/null || true
  done
  for ns in /run/netns/zwp-"$TAG"-h*; do
    [[ -e $ns ]] || continue
    [[ ${ns##*/} =~ ^zwp-$TAG-h[0-9]+$ ]] || continue
    ip netns del "${ns##*/}" 2>/dev/null || true
  done
  if [[ -e /sys/class/net/$(bridge_name) ]]; then ip link del "$(bridge_name)" 2>/dev/null || true; fi
  fw_remove
  rm -rf "$(state_dir)"
}

cmd_down() {
  require_root
  local grace=${GRACE:-5}
  [[ $grace =~ ^[0-9]+$ ]] || usage_error "--grace must be whole seconds"
  if ! cluster_exists; then
    echo "cluster $TAG is not up; nothing to do"
    return 0
  fi
  teardown "$grace"
  echo "cluster $TAG down"
}

# ---------------------------------------------------------------------------------------------
# netem

num_ok() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

rate_bits() {   # tc rate string -> bits per second (for the tbf burst)
  local r=${1,,}
  [[ $r =~ ^([0-9]+([.][0-9]+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)?$ ]] || return 1
  awk -v n="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[3]}" 'BEGIN {
    m["bit"]=1; m["kbit"]=1e3; m["mbit"]=1e6; m["gbit"]=1e9; m["tbit"]=1e12
    m["bps"]=8; m["kbps"]=8e3; m["mbps"]=8e6; m["gbps"]=8e9; m["tbps"]=8e12
    if (u == "") u = "bit"; printf "%.0f\n", n * m[u] }'
}

netem_clear() {
  local ns veth sd f pid start
  ns=$(ns_name "$HOST")
  veth=$(veth_name "$HOST")
  sd=$(state_dir)
  tc qdisc del dev "$veth" root 2>/dev/null || true
  tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
  if ip netns exec "$ns" iptables -w -t mangle -S ZWP_OUT >/dev/null 2>&1; then
    ip netns exec "$ns" iptables -w -t mangle -D OUTPUT -o eth0 -j ZWP_OUT 2>/dev/null || true
    ip netns exec "$ns" iptables -w -t mangle -D PREROUTING -i eth0 -j ZWP_IN 2>/dev/null || true
    ip netns exec "$ns" iptables -w -t mangle -F ZWP_OUT 2>/dev/null || true
    ip netns exec "$ns" iptables -w -t mangle -F ZWP_IN 2>/dev/null || true
    ip netns exec "$ns" iptables -w -t mangle -X ZWP_OUT 2>/dev/null || true
    ip netns exec "$ns" iptables -w -t mangle -X ZWP_IN 2>/dev/null || true
  fi
  f=$sd/delay-h$HOST.pid
  if [[ -f $f ]]; then
    read -r pid start _ <"$f" || true
    if alive "$pid" "$start"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 30); do alive "$pid" "$start" || break; sleep 0.1; done
      if alive "$pid" "$start"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
  fi
  rm -f "$sd/netem-h$HOST" "$sd/delay-h$HOST.ready"
}

netem_try_kernel() {   # tc netem on both ends of the link; fails if the kernel lacks sch_netem
  local ns veth
  ns=$(ns_name "$HOST")
  veth=$(veth_name "$HOST")
  local -a a=(limit 100000)
  if [[ -n $DELAY || -n $JITTER ]]; then a+=(delay "${DELAY:-0}ms"); fi
  if [[ -n $JITTER ]]; then a+=("${JITTER}ms"); fi
  if [[ -n $LOSS ]]; then a+=(loss "${LOSS}%"); fi
  if [[ -n $RATE ]]; then a+=(rate "$RATE"); fi
  if command -v modprobe >/dev/null 2>&1; then modprobe -q sch_netem 2>/dev/null || true; fi
  tc -n "$ns" qdisc replace dev eth0 root netem "${a[@]}" 2>/dev/null || return 1
  if ! tc qdisc replace dev "$veth" root netem "${a[@]}"; then
    tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
    return 1
  fi
}

netem_nfqueue() {   # fallback: iptables NFQUEUE + nfq_delay.py for delay, statistic for loss, tbf for rate
  local ns veth sd prob bits burst pid start ready py
  ns=$(ns_name "$HOST")
  veth=$(veth_name "$HOST")
  sd=$(state_dir)
  if [[ -n $DELAY || -n $JITTER || -n $LOSS ]]; then
    command -v iptables >/dev/null 2>&1 || die "no tc netem in this kernel and no iptables for the NFQUEUE fallback (apt-get install iptables)"
  fi
  if [[ -n $RATE ]]; then
    bits=$(rate_bits "$RATE") || usage_error "--rate: use tc units, e.g. 10mbit, 500kbit, 1gbit"
    burst=$((bits / 8 / 100))            # 10 ms worth
    ((burst >= 6056)) || burst=6056       # at least 4 full frames
    tc -n "$ns" qdisc replace dev eth0 root tbf rate "$RATE" burst "$burst" latency 200ms
    tc qdisc replace dev "$veth" root tbf rate "$RATE" burst "$burst" latency 200ms
  fi
  if [[ -n $DELAY || -n $JITTER ]]; then
    command -v python3 >/dev/null 2>&1 || die "the NFQUEUE delay fallback needs python3"
    py=$(python3 -c 'import sys; print(sys.executable)')
    ready=$sd/delay-h$HOST.ready
    rm -f "$ready"
    (close_inherited_fds && exec ip netns exec "$ns" setsid "$py" "$SCRIPT_DIR/nfq_delay.py" --queue "$NFQ_NUM" \
      --delay-ms "${DELAY:-0}" --jitter-ms "${JITTER:-0}" --ready-file "$ready") \
      </dev/null >>"$sd/delay-h$HOST.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do [[ -s $ready ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    [[ -s $ready ]] || die "delay helper did not start; see $sd/delay-h$HOST.log"
    start=$(proc_start "$pid")
    echo "$pid $start" >"$sd/delay-h$HOST.pid"
  fi
  if [[ -n $DELAY || -n $JITTER || -n $LOSS ]]; then
    local c
    for c in ZWP_OUT ZWP_IN; do
      ip netns exec "$ns" iptables -w -t mangle -N "$c"
      if [[ -n $LOSS ]]; then
        prob=$(awk -v p="$LOSS" 'BEGIN { printf "%.6f", p / 100 }')
        ip netns exec "$ns" iptables -w -t mangle -A "$c" -m statistic --mode random --probability "$prob" -j DROP
      fi
      if [[ -n $DELAY || -n $JITTER ]]; then
        ip netns exec "$ns" iptables -w -t mangle -A "$c" -j NFQUEUE --queue-num "$NFQ_NUM" --queue-bypass
      fi
    done
    ip netns exec "$ns" iptables -w -t mangle -A OUTPUT -o eth0 -j ZWP_OUT
    ip netns exec "$ns" iptables -w -t mangle -A PREROUTING -i eth0 -j ZWP_IN
  fi
}

cmd_netem() {
  require_root
  load_state
  [[ -n ${HOST:-} ]] || usage_error "netem needs --host I"
  check_host
  local backend=${BACKEND:-auto} v
  for v in "${DELAY:-0}" "${JITTER:-0}" "${LOSS:-0}"; do num_ok "$v" || usage_error "--delay/--jitter/--loss take numbers, e.g. 20 or 0.5"; done
  if [[ -n $LOSS ]] && awk -v p="$LOSS" 'BEGIN { exit !(p > 100) }'; then usage_error "--loss is a percentage (0..100)"; fi
  if [[ -n $RATE ]]; then rate_bits "$RATE" >/dev/null || usage_error "--rate: use tc units, e.g. 10mbit, 500kbit, 1gbit"; fi
  case $backend in auto | netem | nfqueue) ;; *) usage_error "--backend is auto, netem or nfqueue" ;; esac
  command -v tc >/dev/null 2>&1 || die "'tc' (iproute2) not found"
  if [[ ${CLEAR:-0} != 1 && -z $DELAY$JITTER$LOSS$RATE ]]; then
    usage_error "netem needs --delay, --jitter, --loss, --rate or --clear"
  fi
  netem_clear
  if [[ ${CLEAR:-0} == 1 ]]; then
    echo "h$HOST: impairments cleared"
    return 0
  fi
  local used=
  NETEM_DONE=0
  trap '[[ $NETEM_DONE == 1 ]] || { info "netem failed; clearing h$HOST"; netem_clear; }' EXIT
  if [[ $backend != nfqueue ]] && netem_try_kernel; then
    used=netem
  elif [[ $backend == netem ]]; then
    die "tc netem failed (kernel without sch_netem? try: modprobe sch_netem)"
  else
    netem_nfqueue
    used=nfqueue
  fi
  local desc="delay=${DELAY:-0}ms jitter=${JITTER:-0}ms loss=${LOSS:-0}% rate=${RATE:-unlimited} backend=$used"
  echo "$desc" >"$(state_dir)/netem-h$HOST"
  NETEM_DONE=1
  echo "h$HOST: $desc (each direction; round trip to h$HOST +$(awk -v d="${DELAY:-0}" 'BEGIN { print 2 * d }')ms)"
}

# ---------------------------------------------------------------------------------------------
# cut / restore / exec / spawn / wait / status / addr

cmd_cut() {
  require_root
  load_state
  [[ -n ${HOST:-} ]] || usage_error "cut needs --host I"
  check_host
  ip link set "$(veth_name "$HOST")" down
  touch "$(state_dir)/cut-h$HOST"
  echo "h$HOST: link cut"
}

cmd_restore() {
  require_root
  load_state
  [[ -n ${HOST:-} ]] || usage_error "restore needs --host I"
  check_host
  ip link set "$(veth_name "$HOST")" up
  rm -f "$(state_dir)/cut-h$HOST"
  echo "h$HOST: link restored"
}

cmd_exec() {
  require_root
  load_state
  [[ -n ${HOST:-} ]] || usage_error "exec needs --host I"
  check_host allow0
  ((${#CMD[@]})) || usage_error "exec needs -- CMD..."
  if ((HOST == 0)); then exec "${CMD[@]}"; fi
  exec ip netns exec "$(ns_name "$HOST")" "${CMD[@]}"
}

# Closes every descriptor above 2 in the calling (sub)shell. A background process must not keep
# the caller's descriptors open: a parent that waits for EOF on a pipe or socket it shared with
# this script (Foundation's Process does) would otherwise wait until the process exits.
close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

cmd_spawn() {
  require_root
  load_state
  [[ -n ${HOST:-} ]] || usage_error "spawn needs --host I"
  check_host
  ((${#CMD[@]})) || usage_error "spawn needs -- CMD..."
  local sd log pid start n rc
  sd=$(state_dir)
  n=$(($(wc -l <"$sd/procs") + 1))
  log=${LOG:-$sd/h$HOST-$n.log}
  mkdir -p "$(dirname "$log")"
  # Background jobs of a script stay in its process group, so setsid needs no fork: $! is the
  # PID of CMD itself, which leads a new session and process group (down kills the group).
  (cd / && close_inherited_fds && exec ip netns exec "$(ns_name "$HOST")" setsid "${CMD[@]}") </dev/null >>"$log" 2>&1 &
  pid=$!
  start=$(proc_start "$pid")
  sleep 0.05
  if [[ -z $(proc_start "$pid") ]]; then
    rc=0
    wait "$pid" || rc=$?
    if ((rc != 0)); then
      tail -n 5 "$log" >&2 || true
      die "h$HOST: '${CMD[*]}' exited at once with status $rc (log: $log)"
    fi
  fi
  printf '%s %s %s %s %s\n' "$pid" "${start:-0}" "$HOST" "$log" "${CMD[*]}" >>"$sd/procs"
  echo "$pid"
}

cmd_wait() {
  load_state
  local timeout=${TIMEOUT:-0} deadline pid start host rest left
  [[ $timeout =~ ^[0-9]+$ ]] || usage_error "--timeout must be whole seconds (0: forever)"
  if [[ -n ${HOST:-} ]]; then check_host; fi
  deadline=$((SECONDS + timeout))
  while :; do
    left=0
    while read -r pid start host rest; do
      [[ -n $pid ]] || continue
      if [[ -n ${HOST:-} && $host != "$HOST" ]]; then continue; fi
      if alive "$pid" "$start"; then left=$((left + 1)); fi
    done <"$(state_dir)/procs"
    ((left)) || return 0
    if ((timeout > 0 && SECONDS >= deadline)); then
      info "$left process(es) still running after ${timeout}s"
      return 124
    fi
    sleep 0.2
  done
}

cmd_status() {
  load_state
  local sd i ns veth addr link imp pid start host log cmd st
  sd=$(state_dir)
  echo "cluster $TAG: bridge $(bridge_name) $SUBNET.1/24, $HOSTS host(s), state $sd"
  while IFS=$'\t' read -r i ns veth addr; do
    link=up
    [[ -f $sd/cut-h$i ]] && link=CUT
    [[ -e /sys/class/net/$veth ]] || link=MISSING
    imp=none
    [[ -f $sd/netem-h$i ]] && imp=$(cat "$sd/netem-h$i")
    printf '  h%-3s %-15s ns %-14s veth %-12s link %-7s netem %s\n' "$i" "$addr" "$ns" "$veth" "$link" "$imp"
  done <"$sd/hosts"
  if [[ -s $sd/procs ]]; then
    echo "spawned:"
    while read -r pid start host log cmd; do
      st=exited
      alive "$pid" "$start" && st=running
      printf '  pid %-8s h%-3s %-8s %s  (log %s)\n' "$pid" "$host" "$st" "$cmd" "$log"
    done <"$sd/procs"
  fi
  local fw=none
  [[ -s $sd/fw ]] && fw=$(wc -l <"$sd/fw")
  echo "firewall rules added: $fw"
}

cmd_addr() {
  load_state
  if [[ ${BRIDGE_FLAG:-0} == 1 ]]; then HOST=0; fi
  [[ -n ${HOST:-} ]] || usage_error "addr needs --host I (0 or --bridge for the bridge)"
  check_host allow0
  if ((HOST == 0)); then echo "$SUBNET.1"; else echo "$SUBNET.$((10 + HOST))"; fi
}

# ---------------------------------------------------------------------------------------------

main() {
  if (($# == 0)); then usage >&2; exit 2; fi
  local command=$1
  shift
  case $command in
    -h | --help | help) usage; exit 0 ;;
    up | down | netem | cut | restore | exec | spawn | wait | status | addr) ;;
    *) usage_error "unknown command '$command'" ;;
  esac
  TAG='' HOSTS='' SUBNET='' HOST='' DELAY='' JITTER='' LOSS='' RATE='' CLEAR=0
  BACKEND='' LOG='' GRACE='' TIMEOUT='' BRIDGE_FLAG=0
  CMD=()
  need() { (($# >= 2)) || usage_error "$1 needs a value"; }
  while (($#)); do
    case $1 in
      --name) need "$@"; TAG=$2; shift 2 ;;
      --hosts) need "$@"; HOSTS=$2; shift 2 ;;
      --subnet) need "$@"; SUBNET=$2; shift 2 ;;
      --host) need "$@"; HOST=$2; shift 2 ;;
      --bridge) BRIDGE_FLAG=1; shift ;;
      --delay) need "$@"; DELAY=$2; shift 2 ;;
      --jitter) need "$@"; JITTER=$2; shift 2 ;;
      --loss) need "$@"; LOSS=${2%\%}; shift 2 ;;
      --rate) need "$@"; RATE=$2; shift 2 ;;
      --clear) CLEAR=1; shift ;;
      --backend) need "$@"; BACKEND=$2; shift 2 ;;
      --log) need "$@"; LOG=$2; shift 2 ;;
      --grace) need "$@"; GRACE=$2; shift 2 ;;
      --timeout) need "$@"; TIMEOUT=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      --) shift; CMD=("$@"); break ;;
      *) usage_error "unknown option '$1' for $command" ;;
    esac
  done
  [[ -n $TAG ]] || usage_error "$command needs --name TAG"
  [[ $TAG =~ ^[a-z0-9]{1,5}$ ]] || usage_error "--name must be 1-5 characters of [a-z0-9] (interface names are limited to 15)"
  if [[ $command != exec && $command != spawn ]] && ((${#CMD[@]})); then usage_error "$command takes no command after --"; fi
  "cmd_$command"
}

main "$@"
