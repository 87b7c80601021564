#!/bin/sh
# Writes datadir.tar.gz: the data directory of a 1-member cluster (member
# m0) written by a synod release built on Pebble v1 (run it with that
# release's binary). TestPebbleV1DataDir starts the current build on a copy.
# Usage: make.sh OLD_SYNOD_BINARY ETCDCTL
set -eu
old=$1 ctl=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
c=127.0.0.1:23791 p=127.0.0.1:23801
serve() {
	"$old" serve --name=m0 --data-dir="$work/m0.data" --snapshot-count=20 \
		--listen-client-urls=http://$c --advertise-client-urls=http://$c \
		--listen-peer-urls=http://$p --initial-advertise-peer-urls=http://$p \
		--initial-cluster=m0=http://$p --initial-cluster-state=new \
		--initial-cluster-token=pebble1 >>"$work/log" 2>&1 &
	pid=$!
	until "$ctl" --endpoints=$c endpoint health >/dev/null 2>&1; do sleep 0.2; done
}
e() { "$ctl" --endpoints=$c "$@"; }
serve
for i in $(seq 1 30); do e put "k$((i % 5))" "v$i" >/dev/null; done # past --snapshot-count
lease=$(e lease grant 1000000 | awk '{print $2}')
e put leased "on $lease" --lease="$lease" >/dev/null
e compaction 20 >/dev/null
kill -TERM $pid; wait $pid || true # a clean stop: the memtable flushed into Pebble v1 sstables
serve
e put after-restart yes >/dev/null
e put k0 last >/dev/null
kill -9 $pid; wait $pid 2>/dev/null || true # the last writes only in Pebble v1's WAL
tar -C "$work" -czf "$here/datadir.tar.gz" m0.data
echo "lease $lease"
