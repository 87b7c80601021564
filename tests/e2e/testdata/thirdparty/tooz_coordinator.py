# OpenStack's tooz (Debian python3-tooz), its etcd3+http:// driver (which
# speaks the JSON gateway through etcd3gw): two coordinators, alice on m0 and
# bob on m1, with groups, locks and heartbeats. Run by
# tests/e2e/thirdparty_test.go.
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import URLS, WAIT, out, run_bounded, section, show, wait_until  # noqa: E402

import etcd3gw  # noqa: E402
import inspect  # noqa: E402
import tenacity  # noqa: E402
import tooz  # noqa: E402
from tooz import coordination  # noqa: E402

# Debian bookworm ships tooz 3.1.0, whose driver calls etcd3gw.client(...,
# api_path=...), with etcd3gw 2.0.0, whose client() has no api_path
# parameter (the driver fails with a TypeError on any server). Give client()
# the parameter, passed to the Etcd3Client constructor that has it; nothing
# else of either library is touched.
if 'api_path' not in inspect.signature(etcd3gw.client).parameters:
    def _client(api_path='/v3alpha/', **kwargs):
        return etcd3gw.Etcd3Client(api_path=api_path, **kwargs)
    etcd3gw.client = _client


def coordinator(member, name):
    url = URLS[member].replace('http://', 'etcd3+http://', 1) + '?api_version=v3&timeout=15&lock_timeout=20'
    c = coordination.get_coordinator(url, name)
    c.start(start_heart=False)
    return c


def attempt(what, fn):
    """Prints fn's result (a tooz async result is waited for), or the tooz error."""
    try:
        r = fn()
        if isinstance(r, coordination.CoordAsyncResult):
            r = r.get(timeout=WAIT)
        out(what, '->', show(r))
    except tooz.ToozError as e:
        out(what, '!>', type(e).__name__, show(str(e)))
    except tenacity.RetryError as e:  # how tooz reports a lock wait that timed out
        out(what, '!>', type(e).__name__)


def groups(a, b):
    section('groups: create, join, members, capabilities, leave, delete')
    attempt('alice create_group g1', lambda: a.create_group(b'g1'))
    attempt('bob create_group g1', lambda: b.create_group(b'g1'))
    attempt('alice create_group g2', lambda: a.create_group(b'g2'))
    attempt('get_groups', lambda: sorted(b.get_groups().get(timeout=WAIT)))
    attempt('alice join g1', lambda: a.join_group(b'g1', b'cap-a'))
    attempt('bob join g1', lambda: b.join_group(b'g1', {'role': 'b'}))
    attempt('alice join g1 again', lambda: a.join_group(b'g1'))
    attempt('members of g1', lambda: a.get_members(b'g1'))
    attempt('bob capabilities', lambda: a.get_member_capabilities(b'g1', b'bob'))
    attempt('bob update_capabilities', lambda: b.update_capabilities(b'g1', b'cap-b2'))
    attempt('bob capabilities', lambda: a.get_member_capabilities(b'g1', b'bob'))
    attempt('carol capabilities', lambda: a.get_member_capabilities(b'g1', b'carol'))
    attempt('delete g1 with members', lambda: a.delete_group(b'g1'))
    attempt('bob leave g1', lambda: b.leave_group(b'g1'))
    attempt('bob leave g1 again', lambda: b.leave_group(b'g1'))
    attempt('members of g1', lambda: b.get_members(b'g1'))
    attempt('members of nothing', lambda: b.get_members(b'nothing'))
    attempt('join nothing', lambda: b.join_group(b'nothing'))
    attempt('delete nothing', lambda: b.delete_group(b'nothing'))
    attempt('delete g2', lambda: a.delete_group(b'g2'))
    attempt('get_groups', lambda: sorted(b.get_groups().get(timeout=WAIT)))


def heartbeats(a, b):
    section('heartbeats and the membership lease')
    attempt('alice heartbeat', lambda: a.heartbeat())
    attempt('bob join g1', lambda: b.join_group(b'g1'))
    attempt('members of g1', lambda: a.get_members(b'g1'))
    # bob's process dies without leaving: its membership lease goes away.
    lease = b._membership_lease
    lease.revoke()
    attempt('members of g1 after bob\'s lease was revoked', lambda: a.get_members(b'g1'))
    attempt('bob heartbeat (its lease is gone: it takes a new one)', lambda: b.heartbeat())
    out('bob has a new lease:', b._membership_lease.id != lease.id)
    attempt('bob join g1 again', lambda: b.join_group(b'g1', b'back'))
    attempt('members of g1', lambda: a.get_members(b'g1'))
    attempt('bob heartbeat', lambda: b.heartbeat())


def locks(a, b):
    section('locks: acquire, contention, blocking acquire released by the holder, heartbeat')
    la = a.get_lock(b'res')
    lb = b.get_lock(b'res')
    attempt('alice acquire', lambda: la.acquire())
    attempt('alice acquired', lambda: la.acquired)
    attempt('bob acquire non-blocking', lambda: lb.acquire(blocking=False))
    attempt('bob acquire for at most 0.5s', lambda: lb.acquire(blocking=0.5))  # (1 would be True: forever)
    attempt('alice heartbeat (refreshes the lock lease)', lambda: a.heartbeat())

    # bob blocks; count its refused attempts so the test knows it is waiting.
    refused = threading.Event()
    txn = b.client.transaction

    def counting(t):
        r = txn(t)
        if not r.get('succeeded'):
            refused.set()
        return r
    b.client.transaction = counting
    box = {}
    th = threading.Thread(target=lambda: box.setdefault('got', lb.acquire(blocking=True)), daemon=True)
    th.start()
    wait_until('bob\'s blocking acquire to be refused once', refused.is_set)
    out('bob is blocked while alice holds the lock:', th.is_alive())
    attempt('alice release', lambda: la.release())
    th.join(WAIT)
    out('bob acquired after alice released:', box.get('got'), 'thread done:', not th.is_alive())
    b.client.transaction = txn
    attempt('bob acquired', lambda: lb.acquired)
    attempt('alice release again', lambda: la.release())
    attempt('alice acquire non-blocking', lambda: la.acquire(blocking=False))
    attempt('bob release', lambda: lb.release())
    attempt('alice break the (free) lock', lambda: la.break_())
    with a.get_lock(b'ctx') as held:
        attempt('in with: acquired', lambda: held.acquired)
    attempt('after with: acquired', lambda: held.acquired)


def main():
    a = run_bounded('alice starts', lambda: coordinator(0, b'alice'))
    b = run_bounded('bob starts', lambda: coordinator(1, b'bob'))
    groups(a, b)
    heartbeats(a, b)
    locks(a, b)
    section('stop')
    attempt('bob stop', lambda: b.stop())
    attempt('members of g1 after bob stopped', lambda: a.get_members(b'g1'))
    attempt('alice stop', lambda: a.stop())


if __name__ == '__main__':
    main()
