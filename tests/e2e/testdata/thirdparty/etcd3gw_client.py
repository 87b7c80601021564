# OpenStack's etcd3gw (Debian python3-etcd3gw), driven as its users drive it,
# against member m0's JSON gateway. Run by tests/e2e/thirdparty_test.go.
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import WAIT, b64, error_body, host_port, out, run_bounded, section, show  # noqa: E402

import etcd3gw  # noqa: E402
from etcd3gw import exceptions  # noqa: E402


def new_client(api_path='/v3/', member=0):
    host, port = host_port(member)
    return etcd3gw.Etcd3Client(host=host, port=port, api_path=api_path, timeout=WAIT)


def attempt(what, fn):
    """Prints fn's result, or the etcd3gw exception it raised."""
    try:
        r = fn()
        out(what, '->', r if isinstance(r, str) else show(r))
    except exceptions.Etcd3Exception as e:
        out(what, '!>', type(e).__name__, show(e.args), error_body(e.detail_text or ''))


def kv(c):
    section('kv: put, get, get_prefix, get_all, create, replace, delete, delete_prefix')
    attempt('put foo bar', lambda: c.put('foo', 'bar'))
    attempt('get foo', lambda: c.get('foo'))
    attempt('get foo metadata', lambda: c.get('foo', metadata=True))
    attempt('get missing', lambda: c.get('missing'))
    for k, v in (('dir/b', '2'), ('dir/a', '1'), ('dir/c', '3'), ('dir/a', '1bis'), ('dis', 'x')):
        attempt('put %s %s' % (k, v), lambda k=k, v=v: c.put(k, v))
    attempt('get_prefix dir/', lambda: c.get_prefix('dir/'))
    attempt('get_prefix dir/ descend', lambda: c.get_prefix('dir/', sort_order='descend'))
    attempt('get_prefix dir/ by mod', lambda: c.get_prefix('dir/', sort_order='ascend', sort_target='mod'))
    attempt('get_prefix dir/ by value desc', lambda: c.get_prefix('dir/', sort_order='descend', sort_target='value'))
    attempt('get dir/ limit 2 keys_only', lambda: c.get('dir/', metadata=True, range_end='ZGlyMA==', limit=2, keys_only=True))
    attempt('get dir/ count_only', lambda: c.get('dir/', range_end='ZGlyMA==', count_only=True))
    attempt('get foo at revision 100', lambda: c.get('foo', metadata=True, revision=100))
    attempt('get_all', lambda: c.get_all())
    attempt('create new v1', lambda: c.create('new', 'v1'))
    attempt('create new v2', lambda: c.create('new', 'v2'))
    attempt('replace foo bar->baz', lambda: c.replace('foo', 'bar', 'baz'))
    attempt('replace foo bar->qux', lambda: c.replace('foo', 'bar', 'qux'))
    attempt('get foo', lambda: c.get('foo'))
    attempt('delete foo', lambda: c.delete('foo'))
    attempt('delete foo again', lambda: c.delete('foo'))
    attempt('delete dis prev_kv', lambda: c.delete('dis', prev_kv=True))
    attempt('delete_prefix dir/', lambda: c.delete_prefix('dir/'))
    attempt('delete_prefix dir/ again', lambda: c.delete_prefix('dir/'))
    attempt('get_prefix dir/', lambda: c.get_prefix('dir/'))


def txn(c):
    section('transaction')
    t = {'compare': [{'key': b64('new'), 'result': 'EQUAL', 'target': 'VERSION', 'version': 1},
                     {'key': b64('new'), 'result': 'GREATER', 'target': 'CREATE', 'create_revision': 1}],
         'success': [{'request_put': {'key': b64('t/1'), 'value': b64('a'), 'prev_kv': True}},
                     {'request_range': {'key': b64('new')}},
                     {'request_delete_range': {'key': b64('new'), 'prev_kv': True}}],
         'failure': [{'request_range': {'key': b64('t/1')}}]}
    attempt('txn version(new)=1', lambda: c.transaction(t))
    attempt('txn again (fails)', lambda: c.transaction(t))
    nested = {'success': [{'request_txn': {'compare': [{'key': b64('t/1'), 'target': 'VALUE', 'result': 'EQUAL',
                                                        'value': b64('a')}],
                                           'success': [{'request_put': {'key': b64('t/2'), 'value': b64('b')}}]}}]}
    attempt('nested txn', lambda: c.transaction(nested))
    dup = {'success': [{'request_put': {'key': b64('t/3')}}, {'request_put': {'key': b64('t/3')}}]}
    attempt('txn with a duplicate key', lambda: c.transaction(dup))
    attempt('put with a missing lease', lambda: c.put('t/4', 'v', lease=etcd3gw.Lease(12345)))
    attempt('put with an empty key', lambda: c.put('', 'v'))


def leases(c):
    section('leases: grant, ttl, keys, refresh, revoke')
    lease = c.lease(ttl=60)
    out('lease id positive:', lease.id > 0)
    ttl = lease.ttl()
    out('ttl in (0, 60]:', 0 < ttl <= 60)
    attempt('put leased/a with the lease', lambda: c.put('leased/a', '1', lease=lease))
    attempt('put leased/b with the lease', lambda: c.put('leased/b', '2', lease=lease))
    attempt('keys', lambda: sorted(lease.keys()))
    attempt('refresh', lambda: lease.refresh())
    attempt('get_prefix leased/', lambda: [(v, m['key'], m['lease'] == str(lease.id)) for v, m in c.get_prefix('leased/')])
    attempt('revoke', lambda: lease.revoke())
    attempt('get_prefix leased/ after revoke', lambda: c.get_prefix('leased/'))
    attempt('ttl after revoke', lambda: lease.ttl())
    attempt('keys after revoke', lambda: lease.keys())
    attempt('refresh after revoke', lambda: lease.refresh())
    attempt('revoke again', lambda: lease.revoke())
    short = c.lease(ttl=1)
    out('a 1s lease: ttl in (0, 5]:', 0 < short.ttl() <= 5)
    short.revoke()


class Collector(object):
    """Pulls a watch's events into a queue, so they can be awaited with a deadline."""

    def __init__(self, events):
        self.q = queue.Queue()
        self.ended = threading.Event()

        def pull():
            for ev in events:
                self.q.put(ev)
            self.ended.set()
        threading.Thread(target=pull, daemon=True).start()

    def next(self, timeout=WAIT):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit('no watch event within %.0fs' % timeout)


def event_line(ev):
    kv = dict(ev['kv'])
    return show({'type': ev.get('type', '<absent>'), 'kv': kv, 'prev_kv': ev.get('prev_kv')})


def current_revision(c):
    return int(c.post(c.get_url('/kv/range'), json={'key': 'AA=='})['header']['revision'])


def watches(c):
    section('watch: from a revision, puts and deletes, then cancel (watching through m2)')
    start = current_revision(c) + 1
    events, cancel = new_client(member=2).watch('w/key', start_revision=start)
    col = Collector(events)
    c.put('w/key', 'v1')
    c.put('w/other', 'x')
    c.put('w/key', 'v2')
    c.delete('w/key')
    for _ in range(3):
        out('event', event_line(col.next()))
    cancel()
    out('iterator ended after cancel:', col.ended.wait(WAIT))

    section('watch_prefix with prev_kv')
    start = current_revision(c) + 1
    events, cancel = c.watch_prefix('w/', start_revision=start, prev_kv=True)
    col = Collector(events)
    c.put('w/a', '1')
    c.put('w/b', '2')
    c.put('w/a', '3')
    c.delete_prefix('w/')
    c.put('wx', 'outside')
    c.put('w/c', '4')
    for _ in range(6):
        out('event', event_line(col.next()))
    cancel()
    out('iterator ended after cancel:', col.ended.wait(WAIT))

    section('watch_once and watch_prefix_once')
    c.put('once', 'here')
    rev = current_revision(c)
    attempt('watch_once from its revision', lambda: event_line(c.watch_once('once', timeout=WAIT, start_revision=rev)))
    attempt('watch_prefix_once', lambda: event_line(c.watch_prefix_once('on', timeout=WAIT, start_revision=rev)))
    attempt('watch_once with nothing to see', lambda: c.watch_once('never', timeout=0.5))


def live_watch(c):
    # Last: the number of writes it makes depends on timing, so no revision
    # is printed here or after it.
    section('watch: events for writes made while watching')
    events, cancel = c.watch('w/live')
    col = Collector(events)
    # The watch is registered asynchronously: write until it sees a write.
    n = 0
    while True:
        n += 1
        c.put('w/live', 'ping')
        try:
            first = col.q.get(timeout=0.2)
            break
        except queue.Empty:
            if n * 0.2 > WAIT:
                raise SystemExit('the watch saw none of %d writes' % n)
    out('first event', show({'type': first.get('type', '<absent>'), 'value': first['kv'].get('value')}))
    c.put('w/live', 'after')
    c.delete('w/live')
    for _ in range(2):
        ev = col.next()
        out('event', show({'type': ev.get('type', '<absent>'), 'key': ev['kv']['key'], 'value': ev['kv'].get('value')}))
    cancel()
    out('iterator ended after cancel:', col.ended.wait(WAIT))


def locks(c):
    section('lock (contender through m1): acquire, is_acquired, contention, release, context manager')
    a = c.lock('res', ttl=60)
    b = new_client(member=1).lock('res', ttl=60)  # a contender on another member
    out('a.acquire', a.acquire())
    out('a.is_acquired', a.is_acquired())
    out('b.acquire while a holds it', b.acquire())
    out('b.is_acquired', b.is_acquired())
    attempt('lock key', lambda: [(v == a.uuid.encode(), m['key'], m['version']) for v, m in c.get_prefix('/locks/')])
    out('a.refresh', a.refresh())
    out('b.release (not the holder)', b.release())
    out('a.is_acquired', a.is_acquired())
    out('a.release', a.release())
    out('a.release again', a.release())
    out('b.acquire after release', b.acquire())
    out('b.is_acquired', b.is_acquired())
    out('b.release', b.release())
    with c.lock('ctx', ttl=60) as held:
        out('in with: is_acquired', held.is_acquired())
    out('after with: is_acquired', held.is_acquired())
    # A holder that dies: its lease is revoked, the lock is free again.
    d = c.lock('res', ttl=60)
    out('d.acquire', d.acquire())
    d.lease.revoke()
    out('b.acquire after the holder\'s lease was revoked', b.acquire())
    b.release()


def cluster(c):
    section('members and status')
    members = run_bounded('members', c.members)
    out('members:', len(members))
    for m in sorted(members, key=lambda m: m['name']):
        out('member', m['name'], 'fields', sorted(m), 'peers', len(m['peerURLs']), 'clients', show(m['clientURLs']))
    st = c.status()
    ids = {m['ID'] for m in members}
    out('status fields', sorted(st))
    out('status header fields', sorted(st['header']))
    out('status leader is a member:', st['leader'] in ids, 'member_id is a member:', st['header']['member_id'] in ids)
    out('status version', st['version'])


def default_path():
    section('the default api path (/v3alpha/)')
    attempt('get foo', lambda: new_client('/v3alpha/').get('foo'))


def main():
    c = new_client()
    kv(c)
    txn(c)
    leases(c)
    watches(c)
    locks(c)
    cluster(c)
    default_path()
    live_watch(c)


if __name__ == '__main__':
    main()
