#!/usr/bin/env bash
# First side-by-side throughput comparison of synod and etcd on this machine.
# Builds synod, and etcd + etcd's benchmark tool through ../shared/tools/etcd-anchors.sh
# (or uses $ANCHORS_BIN), starts identical 3-member clusters on loopback, runs the same
# `benchmark` loads against each, alternating A/B, and prints requests/s and the ratio.
# Usage: bench/compare.sh [rounds]   (default 1). Only loopback addresses are used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-1}
bin=${ANCHORS_BIN:-$(bash "$root/../shared/tools/etcd-anchors.sh")}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/synod" "$root/cmd/synod"

start_cluster() { # kind
  local kind=$1 cmd initial="" i
  for i in 1 2 3; do initial+="m$i=http://127.0.0.1:${i}2380,"; done
  initial=${initial%,}
  for i in 1 2 3; do
    if [[ $kind == synod ]]; then cmd=("$work/synod" serve --log-level=warn); else cmd=("$bin/etcd" --log-level=error); fi
    "${cmd[@]}" --name "m$i" --data-dir "$work/$kind-m$i" \
      --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
      --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
      --initial-cluster "$initial" --initial-cluster-token bench --initial-cluster-state new \
      >"$work/$kind-m$i.log" 2>&1 &
  done
  for _ in $(seq 100); do
    "$bin/etcdctl" --endpoints=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379 endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "cluster $kind did not become healthy" >&2; cat "$work/$kind-m1.log" >&2; exit 1
}
stop_cluster() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"/*-m?; }

leader_ep() { # prints the leader's endpoint, waiting for one to be elected
  local ep
  for _ in $(seq 100); do
    ep=$(leader_once)
    [[ -n $ep ]] && { echo "$ep"; return 0; }
    sleep 0.1
  done
  echo "no leader" >&2; exit 1
}
leader_once() {
  "$bin/etcdctl" --endpoints=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379 endpoint status -w fields |
    awk -F' : ' '/"Leader"/{l=$2} /"MemberID"/{m=$2} /"Endpoint"/{ if (l==m) print $2 }' | tr -d '"' | head -1
}

run_load() { # name args... ; prints requests/sec
  local out; shift
  out=$("$bin/benchmark" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" | awk '/Requests\/sec:/{print $2}'
}

declare -A sum
loads=(put1 put100 range-l range-s)
for r in $(seq "$rounds"); do
  for kind in etcd synod; do
    start_cluster "$kind"
    lead=$(leader_ep)
    all=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379
    v=$(run_load put1 --endpoints="$lead" --conns=1 --clients=1 put --key-size=8 --sequential-keys --total=3000 --val-size=256); sum[$kind,put1]+=" $v"
    v=$(run_load put100 --endpoints="$lead" --conns=10 --clients=100 put --key-size=8 --sequential-keys --total=30000 --val-size=256); sum[$kind,put100]+=" $v"
    v=$(run_load range-l --endpoints="$all" --conns=10 --clients=100 range foo --consistency=l --total=30000); sum[$kind,range-l]+=" $v"
    v=$(run_load range-s --endpoints="$all" --conns=10 --clients=100 range foo --consistency=s --total=30000); sum[$kind,range-s]+=" $v"
    stop_cluster
  done
done
printf '%-10s %14s %14s %8s\n' load "etcd req/s" "synod req/s" ratio
for l in "${loads[@]}"; do
  e=$(echo ${sum[etcd,$l]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  s=$(echo ${sum[synod,$l]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  printf '%-10s %14.0f %14.0f %7.2fx\n' "$l" "$e" "$s" "$(echo "$s / $e" | bc -l)"
done
