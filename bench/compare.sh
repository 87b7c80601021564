#!/usr/bin/env bash
# Side-by-side comparison of synod and etcd on this machine (issue 5).
#
# Builds synod, and etcd + etcd's benchmark tool through ../shared/tools/etcd-anchors.sh
# (or uses $ANCHORS_BIN), starts identical 3-member clusters on loopback, runs the same
# loads with etcd's own `benchmark` tool against each, and prints one table: the median
# over the rounds for etcd and synod and the ratio synod/etcd. Rows with a request count
# also get the CPU the three members spent per request (µs, from /proc/<pid>/stat around
# the load; the load generator's CPU is not in it) and its ratio; a second table gives the
# load generator's own CPU per request and the ratio it leaves room for (the "ceiling"
# if synod's members cost nothing: the tool shares the machine). Rounds alternate the two
# systems (etcd, synod, then synod, etcd, ...), so slow drift of a shared machine hits
# both alike. Only loopback addresses are used.
#
# Usage: bench/compare.sh [-r rounds] [-m modes]
#   -r rounds  default 3
#   -m modes   comma-separated subset of: load,watch,lease,http,footprint,restart,scale
#              (default all but scale)
#              http: put and range through etcd's JSON gateway (/v3/kv/*), driven by hey
#              scale: (issue 18 part 7; long: use -r 1) a fresh cluster loaded with distinct
#              keys of 1 KiB by 1000 clients up to each checkpoint of SCALE_GB (after the put row
#              on the empty store, "@0 GiB", the rate the goal at size is set against); at each one
#              the load step's rate, put (100 clients, distinct keys), range (one key,
#              serializable and linearizable, 100 clients), a scan (10 keys returned from the 1/64
#              of the keys that start with byte 0x80, all of them counted as etcd's Range does;
#              serializable, 100 clients), RSS, disk, the load step's disk
#              writes per KiB loaded, compact (+ defrag of every member for etcd), restart of
#              all members, and a 4th member's join and catch-up (member add + start to its
#              first linearizable read) with its transfer rate (the leader's DB size / time).
#              etcd runs with --quota-backend-bytes=8589934592 (its maximum): its series ends
#              at the checkpoint where it raises NOSPACE. synod runs with a 64 GiB quota.
# Environment:
#   FOOTPRINT_KEYS  keys of 256 B written before RSS and disk are measured (default 100000)
#   RESTART_KEYS    keys in the store when the restart is timed (default 1000000; the keys
#                   beyond FOOTPRINT_KEYS are written with 1000 clients first)
#   KEEP_LOGS=1     keep the member logs, the raw benchmark output and every round's figures
#                   (rounds.tsv) in $work
#   SYNOD_FLAGS     extra flags for `synod serve` (e.g. --enable-pprof)
#   BENCH_PORT_OFFSET  added to every port (members 1-3 on 12379/12380, 22379/..., 32379/...;
#                   member 4 on 13379/13380), so that two runs on one machine do not collide
#   SCALE_GB        scale checkpoints, GiB of 1 KiB values (default 1,4,10; fractions allowed)
#   JOIN_TIMEOUT    seconds the scale mode waits for the new member to serve (default 600)
#   SCALE_PUTS      puts of the scale mode's put rows, on the empty store and at each checkpoint
#                   (default 150000: long enough that the puts' own compactions run inside the
#                   row; a row of 30,000 lasted 4-6 s, and whether a large compaction fell into it
#                   moved its rate by a third between runs of one build)
#   SCALE_SETTLE    seconds the scale mode waits, after each load step and after each put row,
#                   for no compaction to be running on any synod member for 3 s in a row
#                   (default 600). The waits are recorded; the one after a put row is counted in
#                   that put's CPU (its compactions and 3 s of idle members: ~0.3 us per put).
#                   etcd has no background work to wait for.
#   ONLY            etcd or synod: run that system alone (the scale mode past etcd's quota)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3 modes=load,watch,lease,http,footprint,restart
scale_note=""
while getopts "r:m:" o; do
  case $o in
  r) rounds=$OPTARG ;;
  m) modes=$OPTARG ;;
  *) awk 'NR > 1 && !/^#/{exit} NR > 1' "$0" >&2; exit 2 ;;
  esac
done
FOOTPRINT_KEYS=${FOOTPRINT_KEYS:-100000}
RESTART_KEYS=${RESTART_KEYS:-1000000}
SCALE_GB=${SCALE_GB:-1,4,10}
JOIN_TIMEOUT=${JOIN_TIMEOUT:-600}
SCALE_PUTS=${SCALE_PUTS:-150000}
SCALE_SETTLE=${SCALE_SETTLE:-600}
anchors() { # the etcd-anchors.sh next to the repository (or next to its worktree directory)
  local d
  for d in "$root/../shared" "$root/../../shared"; do
    [[ -f $d/tools/etcd-anchors.sh ]] && { bash "$d/tools/etcd-anchors.sh"; return; }
  done
  echo "etcd-anchors.sh not found; set ANCHORS_BIN" >&2; exit 1
}
bin=${ANCHORS_BIN:-$(anchors)}
work=$(mktemp -d)
cleanup() {
  ! declare -F stop_cluster >/dev/null || stop_cluster # not yet defined if the build failed
  if [[ ${KEEP_LOGS:-} == 1 ]]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -o "$work/synod" "$root/cmd/synod"
if [[ ",$modes," == *",http,"* ]]; then # an HTTP load generator whose report etcd's benchmark copies
  GOBIN="$work" go install github.com/rakyll/hey@v0.1.4
fi
# port n shifted by BENCH_PORT_OFFSET, so that two runs on one machine do not share ports
port() { echo $(($1 + ${BENCH_PORT_OFFSET:-0})); }
all=127.0.0.1:$(port 12379),127.0.0.1:$(port 22379),127.0.0.1:$(port 32379)
declare -A pids=()
declare -A extra_flags=() # per kind: flags the current mode adds (scale: the quota)

has_mode() { [[ ",$modes," == *",$1,"* ]]; }

# start_member kind i: starts member i of kind's cluster on its data dir (kept across restarts);
# member 4 joins the cluster of members 1-3 (after a member add) on ports 13379 and 13380
# (under the kernel's ephemeral range, where 42379 may be taken by an outgoing connection).
start_member() {
  local kind=$1 i=$2 cmd initial="" j state=new p=${2}23
  for j in 1 2 3; do initial+="m$j=http://127.0.0.1:$(port ${j}2380),"; done
  ((i == 4)) && initial+="m4=http://127.0.0.1:$(port 13380)," state=existing p=133
  if [[ $kind == synod ]]; then
    cmd=("$work/synod" serve --log-level=error ${SYNOD_FLAGS:-}) # as etcd below: no per-request warnings
  else
    cmd=("$bin/etcd" --log-level=error)
  fi
  "${cmd[@]}" ${extra_flags[$kind]:-} --name "m$i" --data-dir "$work/$kind-m$i" \
    --listen-client-urls "http://127.0.0.1:$(port ${p}79)" --advertise-client-urls "http://127.0.0.1:$(port ${p}79)" \
    --listen-peer-urls "http://127.0.0.1:$(port ${p}80)" --initial-advertise-peer-urls "http://127.0.0.1:$(port ${p}80)" \
    --initial-cluster "${initial%,}" --initial-cluster-token bench --initial-cluster-state "$state" \
    >>"$work/$kind-m$i.log" 2>&1 &
  pids[$i]=$!
}

# wait_serving [endpoints [seconds [soft]]]: waits (default: up to 120 s) until every member
# (default: the 3 first) answers a linearizable read; on a timeout, fails the run, or with
# soft returns 1.
wait_serving() {
  local ep eps=${1:-$all} i deadline=$(($(date +%s) + ${2:-120}))
  while (($(date +%s) < deadline)); do # a refused get returns at once, a hung one after 1 s
    local ok=1
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null || { echo "member $i exited" >&2; tail -5 "$work/$kind-m$i.log" >&2; exit 1; }
    done
    for ep in ${eps//,/ }; do
      "$bin/etcdctl" --endpoints="$ep" --command-timeout=1s get bench-probe >/dev/null 2>&1 || { ok=0; break; }
    done
    [[ $ok == 1 ]] && return 0
    sleep 0.1
  done
  [[ -n ${3:-} ]] && return 1
  echo "cluster did not start serving" >&2; tail -20 "$work"/*-m1.log >&2; exit 1
}

start_cluster() { # kind
  local i
  for i in 1 2 3; do start_member "$1" "$i"; done
  wait_serving
}

# stop_cluster [keep]: stops the members; removes their data unless keep is given.
stop_cluster() {
  local i
  for i in "${!pids[@]}"; do kill "${pids[$i]}" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" 2>/dev/null || true; done
  pids=()
  [[ ${1:-} == keep ]] || rm -rf "$work"/*-m?
}

leader_ep() { # prints the leader's client address
  local ep
  for _ in $(seq 100); do
    ep=$("$bin/etcdctl" --endpoints="$all" endpoint status -w fields 2>/dev/null |
      awk -F' : ' '/"Leader"/{l=$2} /"MemberID"/{m=$2} /"Endpoint"/{ if (l==m) print $2 }' | tr -d '"' | head -1)
    [[ -n $ep ]] && { echo "$ep"; return 0; }
    sleep 0.1
  done
  echo "no leader" >&2; exit 1
}

# bench name field args...: runs etcd's benchmark and records, under name for the current
# kind, its Requests/sec and p99 latency (field rps) or its p50 and p99 latency (field lat),
# and the members' CPU per request on the first of those rows (for lat: per put).
declare -A res=() cpu=()
order=()
bench() {
  local name=$1 field=$2 out before after; shift 2
  before=$(cpu_sample)
  # the progress bar's redraws are dropped: a long load step that fails (etcd past its quota)
  # redraws it millions of times, over a GB of output
  # the group's subshell waits for the tool, so its children's CPU (cutime + cstime) is the
  # tool's own, printed after the report
  out=$({
    "$bin/benchmark" "$@" 2>&1
    local rc=$? me=$BASHPID
    echo "load-generator-ticks: $(awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$me/stat")"
    exit $rc
  } | tr '\r' '\n' | grep -av '^ *[0-9]* / [0-9]* \[') || { echo "$out" >&2; exit 1; }
  after=$(cpu_sample)
  [[ ${KEEP_LOGS:-} == 1 ]] && echo "$out" >"$work/out-$kind-${name//[^a-z0-9]/_}-$round.txt"
  if [[ $field == rps ]]; then
    record "$name (req/s)" "$(awk '/Requests\/sec:/{print $2}' <<<"$out")"
    record_cpu "$name (req/s)" "$before" "$after" "$(completed <<<"$out")"
    record_loadgen "$name (req/s)" "$(awk '/^load-generator-ticks:/{print $2}' <<<"$out")" "$(completed <<<"$out")"
  else
    # watch-latency prints the puts' summary first, then the watch events' one; the puts
    # are the requests, the events they fan out to the watchers are part of their cost
    record_cpu "$name p50 (ms)" "$before" "$after" "$(awk '/Watch events summary/{exit} 1' <<<"$out" | completed)"
    out=$(awk '/Watch events summary/{w=1} w' <<<"$out")
    record "$name p50 (ms)" "$(awk '/ 50% in /{printf "%.3f", $3*1000}' <<<"$out")"
  fi
  record "$name p99 (ms)" "$(awk '/ 99% in /{printf "%.3f", $3*1000}' <<<"$out")"
}
record() { # name value
  [[ " ${order[*]} " == *" $1 "* ]] || order+=("$1")
  res[$kind,$1]+=" $2"
}
# median of the words on stdin; "nan" when there are none (a row one system never reached, as
# etcd's rows past the checkpoint where it raised NOSPACE: grep would fail there, and pipefail
# with it, ending the script in the middle of its table)
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print "nan" }'; }

# Member CPU per request. Only the members' own pids are read (never the load generator's),
# from /proc/<pid>/stat: utime and stime (fields 14 and 15, clock ticks) and, to tell a
# restarted or recycled pid from the process sampled before, the start time (field 22).
hz=$(getconf CLK_TCK)

# cpu_sample: one word per current member, i:pid:starttime:ticks, or i:dead.
cpu_sample() {
  local i w start ut st
  for i in "${!pids[@]}"; do
    # the command name (field 2) may hold spaces: fields are counted after its closing ")"
    w=$(awk '{ sub(/^.*\) /, ""); if ($1 == "Z" || $1 == "X") print "dead"; else print $20 " " $12 " " $13 }' \
      "/proc/${pids[$i]}/stat" 2>/dev/null) || w=dead
    [[ -n $w && $w != dead ]] || { echo "$i:dead"; continue; }
    read -r start ut st <<<"$w"
    echo "$i:${pids[$i]}:$start:$((ut + st))" # bash arithmetic: 64-bit
  done
}

# completed: the requests a report (etcd's benchmark or hey, on stdin) counts as done: the sum
# of its response time histogram (successes only), else Requests/sec x Total.
completed() {
  awk '/^Response time histogram:/{h=1; next}
    h && !NF {h=0}
    h && match($0, /\[[0-9]+\]/) {c+=substr($0, RSTART+1, RLENGTH-2)}
    /^ *Total:/{t=$2} /^ *Requests\/sec:/{r=$2}
    END{ if (c > 0) printf "%d\n", c; else if (t > 0 && r > 0) printf "%.0f\n", t*r }'
}

# cpu_per_request before after n: µs of CPU of all members per request, or n/a when a member
# died or was replaced during the row, or no request completed.
cpu_per_request() {
  local before=$1 after=$2 n=$3 w i ticks=0 members=0
  local -A b=()
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n == 0)); then echo n/a; return; fi
  for w in $before; do b[${w%%:*}]=${w#*:}; done
  for w in $after; do
    i=${w%%:*} w=${w#*:}
    [[ $w != dead && ${b[$i]:-dead} != dead && ${w%:*} == "${b[$i]%:*}" ]] || { echo n/a; return; }
    ticks=$((ticks + ${w##*:} - ${b[$i]##*:}))
    members=$((members + 1))
  done
  ((members > 0 && members == ${#b[@]} && ticks >= 0)) || { echo n/a; return; }
  awk -v t="$ticks" -v hz="$hz" -v n="$n" 'BEGIN{ printf "%.1f\n", t * 1e6 / hz / n }'
}
record_cpu() { # row before after n
  cpu[$kind,$1]+=" $(cpu_per_request "$2" "$3" "$4")"
}
# record_loadgen row ticks n: the load generator's CPU per request (µs), from its clock ticks.
declare -A lgcpu=()
record_loadgen() {
  [[ $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] && (($3 > 0)) || return 0
  lgcpu[$kind,$1]+=" $(awk -v t="$2" -v hz="$hz" -v n="$3" 'BEGIN{ printf "%.1f\n", t * 1e6 / hz / n }')"
}
# cpu_median: the median of the rounds that have a figure, marked * when some round had none.
cpu_median() {
  local v m
  v=$(cat)
  [[ -n ${v// /} ]] || return 0
  m=n/a
  [[ $v =~ [0-9] ]] && m=$(tr ' ' '\n' <<<"$v" | awk 'NF && $0 != "n/a"' | median)
  [[ $v == *n/a* && $m != n/a ]] && m+='*'
  echo "$m"
}

# settle waits until every member has applied the leader's last entry, then 2 s more for
# background work (memtable flushes, compactions, a lagging follower's catch-up), so each
# load starts on a quiet cluster instead of paying for the one before it.
settle() {
  local st
  for _ in $(seq 300); do
    st=$("$bin/etcdctl" --endpoints="$all" endpoint status -w json 2>/dev/null |
      grep -o '"raftAppliedIndex":[0-9]*' | cut -d: -f2 | sort -u | wc -l)
    [[ $st == 1 ]] && break
    sleep 0.1
  done
  sleep 2
}

run_loads() {
  local lead
  lead=$(leader_ep)
  settle
  bench "put, 1 client" rps --endpoints="$lead" --conns=1 --clients=1 put --key-size=8 --sequential-keys --total=3000 --val-size=256
  settle
  bench "put, 100 clients / 10 conns" rps --endpoints="$lead" --conns=10 --clients=100 put --key-size=8 --sequential-keys --total=30000 --val-size=256
  settle
  bench "put, 1000 clients / 100 conns" rps --endpoints="$lead" --conns=100 --clients=1000 put --key-size=8 --sequential-keys --total=50000 --val-size=256
  settle
  bench "txn CAS (stm, 2 keys), 100 clients" rps --endpoints="$all" --conns=10 --clients=100 stm --keys=1000 --keys-per-txn=2 --total=5000 --isolation=r --val-size=256
  settle
  bench "range linearizable, 1 client" rps --endpoints="$lead" --conns=1 --clients=1 range foo --consistency=l --total=3000
  settle
  bench "range serializable, 1 client" rps --endpoints="$lead" --conns=1 --clients=1 range foo --consistency=s --total=3000
  settle
  bench "range linearizable, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 range foo --consistency=l --total=30000
  settle
  bench "range serializable, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 range foo --consistency=s --total=30000
}

# hbench name hey-args...: runs hey against the gateway and records its Requests/sec and p99
# like bench; any answer but 200 fails the run (an error is no throughput).
hbench() {
  local name=$1 out before after; shift
  before=$(cpu_sample)
  out=$("$work/hey" -m POST -T application/json "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  after=$(cpu_sample)
  [[ ${KEEP_LOGS:-} == 1 ]] && echo "$out" >"$work/out-$kind-${name//[^a-z0-9]/_}-$round.txt"
  if grep -A20 'Status code distribution' <<<"$out" | grep -oE '\[[0-9]{3}\]' | grep -qv '\[200\]' ||
    grep -q '^Error distribution' <<<"$out"; then
    echo "$name: answers other than 200:" >&2; echo "$out" >&2; exit 1
  fi
  record "$name (req/s)" "$(awk '/Requests\/sec:/{print $2}' <<<"$out")"
  record_cpu "$name (req/s)" "$before" "$after" "$(completed <<<"$out")"
  record "$name p99 (ms)" "$(awk '/ 99% in /{printf "%.3f", $3*1000}' <<<"$out")"
}

run_http() { # etcd's JSON gateway on the leader: puts of 256 B values, reads of one key
  local lead val put
  lead=$(leader_ep)
  val=$(head -c 256 /dev/zero | tr '\0' v | base64 -w0)
  put="{\"key\":\"Zm9v\",\"value\":\"$val\"}"
  settle
  hbench "HTTP put, 1 client" -n 3000 -c 1 -d "$put" "http://$lead/v3/kv/put"
  settle
  hbench "HTTP put, 100 clients" -n 30000 -c 100 -d "$put" "http://$lead/v3/kv/put"
  settle
  hbench "HTTP range linearizable, 1 client" -n 3000 -c 1 -d '{"key":"Zm9v"}' "http://$lead/v3/kv/range"
  settle
  hbench "HTTP range linearizable, 100 clients" -n 30000 -c 100 -d '{"key":"Zm9v"}' "http://$lead/v3/kv/range"
  settle
  hbench "HTTP range serializable, 100 clients" -n 30000 -c 100 -d '{"key":"Zm9v","serializable":true}' "http://$lead/v3/kv/range"
}

run_watch() { # 1,000 watchers on one key (10 streams x 100) on a follower, 100 puts/s to it
  local lead ep
  lead=$(leader_ep)
  for ep in ${all//,/ }; do [[ $ep != "$lead" ]] && break; done
  settle
  bench "watch event latency, 1000 watchers," lat --endpoints="$ep" --conns=1 --clients=1 watch-latency \
    --streams=10 --watchers-per-stream=100 --put-total=500 --put-rate=100 --val-size=256
}

run_lease() {
  settle
  bench "lease keep-alive, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 lease-keepalive --total=30000
}

# member_rss: sum of the members' resident memory in MiB.
member_rss() {
  local i kb=0 v
  for i in "${!pids[@]}"; do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/${pids[$i]}/status")
    kb=$((kb + v))
  done
  echo "scale=1; $kb / 1024" | bc
}

run_footprint() { # fresh cluster: FOOTPRINT_KEYS distinct keys of 256 B
  local lead
  lead=$(leader_ep)
  bench "load $FOOTPRINT_KEYS keys, 1000 clients" rps --endpoints="$lead" --conns=100 --clients=1000 put --key-size=16 --sequential-keys \
    --key-space-size="$FOOTPRINT_KEYS" --total="$FOOTPRINT_KEYS" --val-size=256
  sleep 2 # let the followers apply and background flushes settle
  record_footprint "" ", $FOOTPRINT_KEYS keys"
}

# record_footprint prefix suffix: records RSS and disk of the 3 members under "prefix what suffix".
record_footprint() {
  record "${1}RSS, 3 members$2 (MiB)" "$(member_rss)"
  # allocated blocks include preallocated WAL space (etcd: 64 MiB segments; Pebble: 1.1 x
  # the memtable size per WAL); the apparent size is the bytes actually written
  record "${1}disk allocated, 3 members$2 (MiB)" "$(du -s --block-size=1 "$work/$kind"-m? | awk '{s+=$1} END{printf "%.1f", s/1048576}')"
  record "${1}disk apparent, 3 members$2 (MiB)" "$(disk_apparent)"
}
disk_apparent() { du -sb "$work/$kind"-m? | awk '{s+=$1} END{printf "%.1f", s/1048576}'; }

run_restart() { # the store holds RESTART_KEYS keys; all members are restarted at once
  local lead extra t0 t1
  extra=$((RESTART_KEYS - FOOTPRINT_KEYS))
  if ((extra > 0)); then
    lead=$(leader_ep)
    "$bin/benchmark" --endpoints="$lead" --conns=100 --clients=1000 put --key-size=16 --sequential-keys \
      --key-space-size="$RESTART_KEYS" --total="$RESTART_KEYS" --val-size=256 >/dev/null 2>&1
  fi
  restart_all "restart to serving, $RESTART_KEYS keys (s)"
}

# restart_all row: stops the 3 members and records under row the time from starting them
# all again to every one answering a linearizable get.
restart_all() {
  local t0 i
  stop_cluster keep
  t0=$(date +%s.%N)
  for i in 1 2 3; do start_member "$kind" "$i"; done
  wait_serving "$all" 600
  record "$1" "$(since "$t0")"
}
since() { echo "$(date +%s.%N) - $1" | bc -l | xargs printf '%.2f'; } # seconds since $1

# Scale mode (issue 18 part 7). etcd's `benchmark put` names request i the varint of
# i % key-space-size, zero-padded to --key-size, and has no key offset: each load step
# therefore uses its own key size (17, 18, ... bytes), so no step overwrites another's keys,
# and the measuring puts use sizes from 64 up (distinct keys, never a loaded one).
declare -A scale_quota=([etcd]=8589934592 [synod]=68719476736)

# io_sample: the bytes the members wrote to storage so far (write_bytes of /proc/<pid>/io).
io_sample() {
  local i b=0 v
  for i in "${!pids[@]}"; do
    v=$(awk '/^write_bytes:/{print $2}' "/proc/${pids[$i]}/io" 2>/dev/null) || v=0
    b=$((b + ${v:-0}))
  done
  echo "$b"
}

# status_field ep name: a number from etcdctl endpoint status -w json (revision, dbSize, ...).
status_field() {
  "$bin/etcdctl" --endpoints="$1" endpoint status -w json | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}

nospace() { "$bin/etcdctl" --endpoints="$all" alarm list 2>/dev/null | grep -q NOSPACE; }

run_scale() {
  local lead gb target n loaded=0 step=0 w0 c0 at
  extra_flags[$kind]="--quota-backend-bytes=${scale_quota[$kind]}"
  start_cluster "$kind"
  lead=$(leader_ep)
  # the key the range rows read: written first, so that it sits in the oldest data
  "$bin/etcdctl" --endpoints="$lead" put bench-range "$(head -c 1024 /dev/zero | tr '\0' r)" >/dev/null
  # the same put as at each checkpoint, on the empty store: the rate the goal at size is set against
  settle
  scale_put "@0 GiB: " 63
  for gb in ${SCALE_GB//,/ }; do
    target=$(awk -v g="$gb" 'BEGIN{printf "%d", g * 1048576}')
    n=$((target - loaded)) at="@${gb} GiB: "
    ((n > 0)) || continue
    step=$((step + 1))
    lead=$(leader_ep)
    settle
    w0=$(io_sample) c0=$(cpu_sample)
    bench "${at}load step, 1000 clients" rps --endpoints="$lead" --conns=100 --clients=1000 put \
      --key-size=$((16 + step)) --sequential-keys --key-space-size="$n" --total="$n" --val-size=1024
    loaded=$target
    if nospace; then
      scale_note+=" $kind raised NOSPACE loading to $gb GiB, its series ends there;"
      break
    fi
    settle
    record "${at}disk writes per KiB loaded, 3 members" "$(per_kib_loaded "$w0" "$n")"
    settle_compactions "${at}compactions settled after the load step"
    record "${at}load step: members' CPU per put, compactions after the step included (µs)" \
      "$(cpu_per_request "$c0" "$(cpu_sample)" "$n")"
    record "${at}load step: disk writes per KiB loaded, compactions after the step included" \
      "$(per_kib_loaded "$w0" "$n")"
    scale_checkpoint "$at" "$step"
  done
  stop_cluster
  extra_flags[$kind]=""
}

# scale_checkpoint row-prefix step: the figures taken at one checkpoint.
scale_checkpoint() {
  local at=$1 lead
  lead=$(leader_ep)
  scale_put "$at" $((63 + $2))
  settle
  bench "${at}range serializable, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 range bench-range --consistency=s --total=30000
  settle
  bench "${at}range linearizable, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 range bench-range --consistency=l --total=30000
  settle
  # a scan opens every memtable, sublevel of level 0 and level below it, where a one-key read
  # is answered by the bloom filters: what a deeper level 0 costs reads. The loaded keys are
  # zigzag varints, so 0x80 starts those of every multiple of 64 (and no key starts with a
  # letter). A Range's count is of every key in its range, whatever its limit, so each request
  # walks 1/64 of the store: a cost that grows with it, in etcd (its in-memory index) as in synod
  bench "${at}scan: 10 keys of 1/64 counted, serializable, 100 clients" rps --endpoints="$all" --conns=10 --clients=100 range $'\x80' $'\x81' --limit=10 --consistency=s --total=2000
  record_footprint "$at" ""
  scale_compact "$at" "$lead"
  restart_all "${at}restart to serving (s)"
  scale_join "$at"
}

# per_kib_loaded w0 n: the members' disk writes since io_sample gave w0, per KiB of n 1 KiB puts.
per_kib_loaded() { awk -v b="$(($(io_sample) - $1))" -v n="$2" 'BEGIN{printf "%.2f", b / 1024 / n}'; }

# settle_compactions row: for synod, waits (at most SCALE_SETTLE s) until no member has run a
# compaction of its state database for 3 s in a row (synod_pebble_compactions_in_progress on
# /metrics) and records the wait as row (s). After a load step, so that the put row measures the
# puts, not the rest of the load step's compactions; after the put row, so that the CPU its
# compactions take once it has ended is counted too (scale_put). etcd's bbolt does its work
# inside each commit: n/a.
settle_compactions() {
  local t0 quiet=0 busy ep deadline m
  if [[ $kind != synod ]]; then
    record "$1 (s)" n/a
    return
  fi
  t0=$(date +%s.%N) deadline=$(($(date +%s) + SCALE_SETTLE))
  while ((quiet < 3 && $(date +%s) < deadline)); do
    busy=0
    for ep in ${all//,/ }; do # not curl | grep -q: grep's early exit would fail curl (pipefail)
      m=$(curl -sf "http://$ep/metrics") && grep -q '^synod_pebble_compactions_in_progress{db="state"} 0$' <<<"$m" || busy=1
    done
    if ((busy)); then quiet=0; else quiet=$((quiet + 1)); fi
    sleep 1
  done
  record "$1 (s)" "$(since "$t0")"
}

# scale_put row-prefix key-size: the put row of the scale mode (SCALE_PUTS new keys, 100
# clients), then the members' CPU per put from its start until the compactions it left behind
# have ended: the put's whole cost, where the row's own CPU column leaves out whatever Pebble
# compacts after the tool is done.
scale_put() {
  local c0
  c0=$(cpu_sample)
  bench "${1}put, 100 clients, new keys" rps --endpoints="$(leader_ep)" --conns=10 --clients=100 put \
    --key-size="$2" --sequential-keys --key-space-size="$SCALE_PUTS" --total="$SCALE_PUTS" --val-size=1024
  settle_compactions "${1}put: compactions settled after the row"
  record "${1}put: members' CPU per put, compactions after the row included (µs)" \
    "$(cpu_per_request "$c0" "$(cpu_sample)" "$SCALE_PUTS")"
}

# scale_compact row-prefix leader: compacts at the current revision and, for etcd, defragments
# every member in turn; records the times and the disk they freed. synod has no
# defragmentation to do (Pebble compacts in the background; its defrag is a full compaction).
scale_compact() {
  local t0 before
  before=$(disk_apparent)
  t0=$(date +%s.%N)
  "$bin/etcdctl" --endpoints="$2" --command-timeout=30m compact "$(status_field "$2" revision)" --physical >/dev/null
  record "${1}compact --physical (s)" "$(since "$t0")"
  if [[ $kind == etcd ]]; then
    t0=$(date +%s.%N)
    "$bin/etcdctl" --endpoints="$all" --command-timeout=30m defrag >/dev/null
    record "${1}defrag, 3 members (s)" "$(since "$t0")"
  else
    record "${1}defrag, 3 members (s)" n/a
  fi
  record "${1}disk freed by compact + defrag (MiB)" "$(echo "$before - $(disk_apparent)" | bc)"
}

# scale_join row-prefix: adds a 4th member, starts it empty and records the time until it
# answers a linearizable read (it has the snapshot and the log up to the read's index), and
# the leader's DB size over that time; then removes it again.
scale_join() {
  local t0 t size id
  size=$(status_field "$(leader_ep)" dbSize)
  for _ in $(seq 600); do # etcd refuses a member add until every member has been up 5 s
    t0=$(date +%s.%N)
    "$bin/etcdctl" --endpoints="$all" member add m4 --peer-urls=http://127.0.0.1:$(port 13380) >/dev/null 2>&1 && break
    sleep 0.1
  done
  start_member "$kind" 4
  if wait_serving 127.0.0.1:$(port 13379) "$JOIN_TIMEOUT" soft; then
    t=$(since "$t0")
    record "${1}new member caught up (s)" "$t"
    record "${1}new member transfer (MB/s)" "$(awk -v s="$size" -v t="$t" 'BEGIN{printf "%.1f", s / 1e6 / t}')"
  else
    record "${1}new member caught up (s)" "n/a"
    scale_note+=" $kind's new member did not serve within ${JOIN_TIMEOUT} s at ${1%: };"
  fi
  id=$("$bin/etcdctl" --endpoints="$all" member list | awk -F', ' '$4 == "http://127.0.0.1:'"$(port 13380)"'" {print $1}')
  "$bin/etcdctl" --endpoints="$all" member remove "$id" >/dev/null
  kill "${pids[4]}" 2>/dev/null || true
  wait "${pids[4]}" 2>/dev/null || true
  unset 'pids[4]'
  rm -rf "$work/$kind-m4"
}

for round in $(seq "$rounds"); do
  kinds=(etcd synod)
  ((round % 2 == 0)) && kinds=(synod etcd)
  [[ -n ${ONLY:-} ]] && kinds=("$ONLY")
  for kind in "${kinds[@]}"; do
    echo "round $round: $kind" >&2
    if has_mode load || has_mode watch || has_mode lease || has_mode http; then
      start_cluster "$kind"
      has_mode load && run_loads
      has_mode http && run_http
      has_mode watch && run_watch
      has_mode lease && run_lease
      stop_cluster
    fi
    if has_mode footprint || has_mode restart; then
      start_cluster "$kind"
      run_footprint
      has_mode restart && run_restart
      stop_cluster
    fi
    if has_mode scale; then run_scale; fi
  done
done

ratio() { awk -v s="${2%\*}" -v e="${1%\*}" 'BEGIN{ if (e+0 > 0 && s ~ /^[0-9.]+$/) printf "%.2fx", s/e; else print "-" }'; }
printf '\n%-48s %12s %12s %8s %10s %10s %8s\n' "metric (median of $rounds)" etcd synod synod/etcd \
  "etcd CPU" "synod CPU" synod/etcd
echo "(req/s: higher is better; ms, s, MiB: lower is better; CPU: µs of the 3 members' CPU per request)"
for name in "${order[@]}"; do
  e=$(median <<<"${res[etcd,$name]:-}")
  s=$(median <<<"${res[synod,$name]:-}")
  ce=$(cpu_median <<<"${cpu[etcd,$name]:-}")
  cs=$(cpu_median <<<"${cpu[synod,$name]:-}")
  cr=""
  [[ -n $ce$cs ]] && cr=$(ratio "$ce" "$cs")
  printf '%-48s %12s %12s %8s %10s %10s %8s\n' "$name" "$e" "$s" "$(ratio "$e" "$s")" "$ce" "$cs" "$cr"
done
# The load generator shares the machine: on two cores a row's throughput is about the cores
# over (members' CPU + the tool's CPU) per request, so the tool's own CPU bounds the ratio any
# member could reach. "ceiling": the ratio synod's throughput would have if its members cost
# nothing, (etcd's members + the tool in etcd's run) / (the tool in synod's run).
if ((${#lgcpu[@]})); then
  printf '\n%-48s %12s %12s %10s\n' "load generator CPU, µs per request (median)" "etcd's run" "synod's run" ceiling
  for name in "${order[@]}"; do
    le=$(median <<<"${lgcpu[etcd,$name]:-}")
    ls_=$(median <<<"${lgcpu[synod,$name]:-}")
    [[ $le != nan || $ls_ != nan ]] || continue
    ce=$(cpu_median <<<"${cpu[etcd,$name]:-}")
    ceil=$(awk -v e="${ce%\*}" -v l="$le" -v s="$ls_" 'BEGIN{ if (e ~ /^[0-9.]+$/ && s+0 > 0) printf "%.2fx", (e+l)/s; else print "-" }')
    printf '%-48s %12s %12s %10s\n' "$name" "$le" "$ls_" "$ceil"
  done
fi
if [[ ${KEEP_LOGS:-} == 1 ]]; then # every round's figure, in round order, to judge the spread
  for name in "${order[@]}"; do
    for kind in etcd synod; do
      printf '%s\t%s\t%s\tCPU:%s\n' "$name" "$kind" "${res[$kind,$name]:-}" "${cpu[$kind,$name]:-}"
    done
  done >"$work/rounds.tsv"
fi
[[ -n $scale_note ]] && echo "(scale:$scale_note)"
if [[ " ${cpu[*]} " == *n/a* ]]; then
  echo "(CPU n/a: a member died or was replaced during that row in every round; *: in some rounds, the median is of the others)"
fi
