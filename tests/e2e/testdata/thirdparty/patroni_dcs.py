# Patroni (Debian patroni), its etcd3 DCS (patroni.dcs.etcd3, which speaks
# the JSON gateway with its own urllib3 client), driven as Patroni's HA loop
# drives it, for two nodes pg1 and pg2, with no PostgreSQL: the DCS class is
# the whole of Patroni's use of etcd. Run by tests/e2e/thirdparty_test.go.
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import URLS, WAIT, host_port, norm_text, out, section, show, wait_until  # noqa: E402

from patroni.dcs.etcd3 import Etcd3  # noqa: E402


def dcs(name, scope='demo', **extra):
    """Patroni's etcd3 DCS for node name, configured as patroni.yml's etcd3 section would."""
    hosts = ['%s:%d' % host_port(i) for i in range(len(URLS))]
    config = {'scope': scope, 'namespace': '/service/', 'name': name, 'ttl': 30,
              'loop_wait': 10, 'retry_timeout': 10, 'hosts': hosts}
    config.update(extra)
    return Etcd3(config)


NODES = {}  # name -> Etcd3


def owner(lease):
    """Whose lease this is (lease IDs differ between clusters)."""
    for name, d in NODES.items():
        if lease is not None and str(lease) == str(d._lease):
            return 'lease(%s)' % name
    return 'no lease' if lease is None else 'another lease'


def view(cluster):
    """The cluster as Patroni sees it, one line per part."""
    c = cluster
    lines = ['initialize ' + show(c.initialize)]
    lines.append('config ' + (show([c.config.index, c.config.data]) if c.config else 'none'))
    if c.leader:
        lines.append('leader %s index %s %s' % (c.leader.name, c.leader.index, owner(c.leader.session)))
    else:
        lines.append('leader none')
    for m in sorted(c.members, key=lambda m: m.name):
        lines.append('member %s index %s %s %s' % (m.name, m.index, owner(m.session), show(m.data)))
    lines.append('last_lsn %s' % c.last_lsn)
    lines.append('failover ' + (show([c.failover.index, c.failover.leader, c.failover.candidate])
                                if c.failover else 'none'))
    lines.append('sync ' + show([c.sync.index, c.sync.leader, sorted(c.sync.members)]))
    lines.append('history ' + (show([c.history.index, c.history.lines]) if c.history else 'none'))
    return lines


def settle(name, what, pred):
    """Waits until node name's view of the cluster (its watch-fed cache)
    satisfies pred, then prints it."""
    d = NODES[name]
    box = {}

    def ok():
        box['c'] = d.get_cluster()
        return pred(box['c'])
    wait_until('%s to see %s' % (name, what), ok)
    out('--- as %s sees it, once %s:' % (name, what))
    for line in view(box['c']):
        out(line)


def leader_is(name):
    return lambda c: (c.leader.name if c.leader else None) == name


def member_data(name):
    return {'conn_url': 'postgres://%s:5432/postgres' % name, 'api_url': 'http://%s:8008/patroni' % name,
            'state': 'running', 'role': 'replica', 'version': '3.0.2'}


def discovery():
    section('discovery: API version and the member list')
    NODES['pg1'] = dcs('pg1')
    c = NODES['pg1']._client
    out('version prefix', c.version_prefix, 'cluster version', c._cluster_version)
    out('machines', show(sorted(norm_text(u) for u in c.machines_cache)))
    NODES['pg2'] = dcs('pg2')


def bootstrap():
    section('bootstrap: initialize race, members, leader race')
    pg1, pg2 = NODES['pg1'], NODES['pg2']
    out('pg1 initialize', pg1.initialize(create_new=True, sysid='7000000000000000001'))
    out('pg2 initialize', pg2.initialize(create_new=True, sysid='7000000000000000002'))
    out('pg1 set_config_value', pg1.set_config_value(json.dumps({'ttl': 30, 'loop_wait': 10})))
    out('pg1 touch_member', pg1.touch_member(member_data('pg1')))
    out('pg2 touch_member', pg2.touch_member(member_data('pg2')))
    out('pg1 attempt_to_acquire_leader', pg1.attempt_to_acquire_leader())
    out('pg2 attempt_to_acquire_leader', pg2.attempt_to_acquire_leader())
    settle('pg2', 'pg1 leads with two members', lambda c: leader_is('pg1')(c) and len(c.members) == 2)


def leader_loop():
    section('the leader\'s loop: update_leader, status, sync, history, failover, config CAS')
    pg1 = NODES['pg1']
    out('pg1 update_leader', pg1.update_leader(50331648, slots={'pg2': 50331000}))
    out('pg1 write_sync_state', pg1.write_sync_state('pg1', ['pg2']))
    out('pg1 set_history_value', pg1.set_history_value('[[1,25165984,"no recovery target specified"]]'))
    out('pg1 manual_failover', pg1.manual_failover('pg1', 'pg2'))
    settle('pg2', 'the failover key', lambda c: c.failover is not None and c.last_lsn == 50331648 and c.history)
    cfg = NODES['pg2'].get_cluster().config
    out('config CAS at a stale index', pg1.set_config_value('{"ttl":20}', index=int(cfg.index) - 1))
    out('config CAS at its index', pg1.set_config_value('{"ttl":20}', index=cfg.index))
    settle('pg2', 'the new config', lambda c: c.config.data.get('ttl') == 20)


def failover():
    section('failover: the leader steps down, a watching replica wakes and takes over')
    pg1, pg2 = NODES['pg1'], NODES['pg2']
    pg2.event.clear()
    pg1.get_cluster()
    out('pg1 delete_leader', pg1.delete_leader(last_lsn=50331700))
    start = time.monotonic()
    woke = pg2.watch(None, WAIT)
    out('pg2 watch woke on pg1 stepping down:', woke, 'before its timeout:', time.monotonic() - start < WAIT)
    settle('pg2', 'no leader', leader_is(None))
    out('pg2 attempt_to_acquire_leader', pg2.attempt_to_acquire_leader())
    out('pg1 attempt_to_acquire_leader', pg1.attempt_to_acquire_leader())
    settle('pg1', 'pg2 leads', leader_is('pg2'))


def dead_leader():
    section('a dead leader: its lease revoked, its keys go; it comes back with a new lease')
    pg2 = NODES['pg2']
    old = pg2._lease
    out('revoke pg2\'s lease', show(sorted(pg2._client.call_rpc('/kv/lease/revoke', {'ID': old}))))
    settle('pg1', 'pg2\'s leader and member keys gone',
           lambda c: c.leader is None and [m.name for m in c.members] == ['pg1'])
    out('pg2 update_leader', pg2.update_leader(50331800))
    out('pg2 has a new lease:', pg2._lease != old)
    out('pg2 touch_member', pg2.touch_member(member_data('pg2')))
    settle('pg1', 'pg2 leads again', lambda c: leader_is('pg2')(c) and len(c.members) == 2)


def cleanup():
    section('remove the cluster')
    out('pg2 delete_sync_state', NODES['pg2'].delete_sync_state())
    out('pg1 cancel_initialization', NODES['pg1'].cancel_initialization())
    out('pg1 delete_cluster', NODES['pg1'].delete_cluster())
    settle('pg2', 'an empty cluster', lambda c: c.leader is None and not c.members and c.config is None)


def main():
    discovery()
    bootstrap()
    leader_loop()
    failover()
    dead_leader()
    cleanup()
    sys.stdout.flush()
    os._exit(0)  # Patroni's watcher threads never end


if __name__ == '__main__':
    main()
