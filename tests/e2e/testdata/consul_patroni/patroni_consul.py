"""Drive synod's Consul API with Patroni's Consul DCS (Debian's patroni,
patroni.dcs.consul.Consul on python3-consul2), as Patroni's HA loop drives it,
for two nodes and no PostgreSQL. Usage: patroni_consul.py HOST:PORT HOST:PORT
HOST:PORT (one Consul API per member; node pg1 talks to the first, pg2 to the
second, the third is read with python-consul2 itself). Prints one line per
step and exits 1 on the first step that does not behave as Consul does, 3
when the modules are not Patroni 3.0 and python-consul2. To let the test kill
and restart a member, it prints "KILL <i>" and "RESTART <i>" and waits for a
line on its standard input after each."""
import http.server
import socketserver
import sys
import threading
import time

import consul

try:
    from patroni.version import __version__ as PATRONI_VERSION
    from patroni.exceptions import DCSError
    from patroni.dcs.consul import Consul
except ImportError as e:
    print("SKIP: cannot import Patroni's Consul DCS: %s" % e)
    sys.exit(3)

TTL = 20  # Patroni's ttl: its session's TTL is half of it (Consul's minimum of 10 s), as Consul's server ends a
# session twice its TTL after its last renewal
SESSION_TTL = TTL / 2.0
SCOPE = 'demo'


def fail(msg):
    print("FAIL: " + msg)
    sys.stdout.flush()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)
    sys.stdout.flush()


def wait_until(what, pred, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    fail("timed out after %ss waiting for %s" % (timeout, what))


def harness(cmd, i):
    """Asks the Go test to act on member i and waits until it has."""
    print("%s %d" % (cmd, i))
    sys.stdout.flush()
    if not sys.stdin.readline():
        fail("the test closed stdin instead of answering " + cmd)


class Healthy(http.server.BaseHTTPRequestHandler):
    """Patroni's REST API as its Consul service check sees it: 200 on every role path."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'ok')

    def log_message(self, *args):
        pass


def api_server():
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), Healthy)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def dcs(name, hostport):
    return Consul({'scope': SCOPE, 'namespace': '/service/', 'name': name, 'ttl': TTL,
                   'loop_wait': 1, 'retry_timeout': 2, 'host': hostport,
                   'register_service': True, 'service_check_interval': '1s'})


def member_data(port, role, state='running'):
    return {'conn_url': 'postgres://127.0.0.1:%d/postgres' % (port + 1),
            'api_url': 'http://127.0.0.1:%d/patroni' % port,
            'state': state, 'role': role, 'version': PATRONI_VERSION}


def race(nodes, call):
    """Runs call(node) for every node at once; returns {name: result}."""
    results, barrier = {}, threading.Barrier(len(nodes))

    def run(name, d):
        barrier.wait()
        results[name] = call(d)
    threads = [threading.Thread(target=run, args=(n, d)) for n, d in nodes.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def leads(cluster, name):
    return cluster.leader is not None and cluster.leader.name == name


def quietly(call, *args):
    """call(*args), or False when the DCS raises (Patroni's HA loop treats both as a failure)."""
    try:
        return call(*args)
    except DCSError as e:
        print("   (%s raised %s)" % (call.__name__, e))
        return False


def services(reader):
    _, entries = reader.health.service(SCOPE, passing=True)
    return {e['Service']['ID']: sorted(e['Service']['Tags']) for e in entries}


def main():
    if not consul.__version__.startswith("0.1.") or not PATRONI_VERSION.startswith("3.0."):
        print("SKIP: consul %s and patroni %s, not python-consul2 0.1.x and Patroni 3.0.x"
              % (consul.__version__, PATRONI_VERSION))
        sys.exit(3)
    hosts = sys.argv[1:4]
    reader = consul.Consul(host=hosts[2].rsplit(':', 1)[0], port=int(hosts[2].rsplit(':', 1)[1]))
    nodes = {'pg1': dcs('pg1', hosts[0]), 'pg2': dcs('pg2', hosts[1])}
    member_of = {'pg1': 0, 'pg2': 1}
    ports = {'pg1': api_server(), 'pg2': api_server()}
    check(all(d._session for d in nodes.values()), "Consul(): each node created its session (TTL %ss)" % SESSION_TTL)
    sessions = {n: reader.session.info(d._session)[1] for n, d in nodes.items()}
    got = [(s['Name'], s['Behavior'], s['TTL'], s.get('Checks'), s.get('NodeChecks'), s['LockDelay'])
           for s in sessions.values() if s]
    check(len(got) == 2 and all(g[1:3] == ('delete', '%ss' % SESSION_TTL) and not g[3] and not g[4] and
                                g[5] == 1000000 for g in got),
          "session.info on member 2: both sessions, behavior delete, TTL %ss as sent, no checks (Patroni sends "
          "Checks: [], so that the node's serfHealth does not end them), lock delay 1ms (%s)" % (SESSION_TTL, got))

    won = race(nodes, lambda d: d.initialize(create_new=True, sysid='700000000000000000' + d._name[-1]))
    check(sorted(won.values()) == [False, True], "initialize race: exactly one wins (%s)" % won)
    winner = [n for n, ok in won.items() if ok][0]
    init = nodes['pg1'].get_cluster().initialize
    check(init == '700000000000000000' + winner[-1], "get_cluster: initialize holds the winner's sysid %s" % init)

    for n, d in nodes.items():
        check(d.touch_member(member_data(ports[n], 'replica')), "touch_member %s" % n)
    took = race(nodes, lambda d: d.attempt_to_acquire_leader())
    check(sorted(took.values()) == [False, True], "attempt_to_acquire_leader race: exactly one wins (%s)" % took)
    lead = [n for n, ok in took.items() if ok][0]
    other = 'pg2' if lead == 'pg1' else 'pg1'
    L, F = nodes[lead], nodes[other]
    check(not F.attempt_to_acquire_leader(), "%s cannot take the held lock" % other)
    c = F.get_cluster()
    check(c.leader and c.leader.name == lead and c.leader.session == L._session,
          "get_cluster (recursive KV read) on %s: %s leads under its session" % (other, lead))
    check(sorted(m.name for m in c.members) == ['pg1', 'pg2'], "get_cluster: both members")
    check(L.get_cluster().leader.name == lead and L.update_leader(50331648), "update_leader: %s keeps the lock" % lead)
    check(L.touch_member(member_data(ports[lead], 'master')), "touch_member %s as master" % lead)
    check(F.get_cluster().last_lsn == 50331648, "get_cluster: the leader's last_lsn")

    want = {'%s/%s' % (SCOPE, lead): ['master', 'primary'], '%s/%s' % (SCOPE, other): ['replica']}
    wait_until("both services passing on member 2", lambda: services(reader) == want)
    check(True, "register_service: %s passing with their HTTP checks, tags %s" % (SCOPE, want))

    check(L.manual_failover(lead, other), "manual_failover %s -> %s" % (lead, other))
    fo = F.get_cluster().failover
    check(fo and fo.leader == lead and fo.candidate == other, "get_cluster: the failover key")
    check(L.manual_failover('', '', index=fo.index) is not False, "manual_failover cleared at its index")

    # kill -9 the member the leader talks to: the lock stays the leader's.
    # The other node tries to take it from the kill until the leader has
    # renewed on the restarted member, which is well within the TTL.
    L.get_cluster()
    renewed = time.monotonic()
    check(L.update_leader(50331700), "update_leader before the kill")
    harness("KILL", member_of[lead])
    stop, stolen, tries = threading.Event(), [], [0]

    def contend():
        while not stop.is_set():
            if quietly(F.attempt_to_acquire_leader):
                stolen.append(time.monotonic() - renewed)
                return
            tries[0] += 1
            stop.wait(0.3)
    contender = threading.Thread(target=contend)
    contender.start()
    check(not quietly(L.update_leader, 50331701), "update_leader fails while %s's member is dead" % lead)
    harness("RESTART", member_of[lead])
    session = L._session
    wait_until("%s to renew on its restarted member" % lead,
               lambda: quietly(lambda: leads(L.get_cluster(), lead) and L.update_leader(50331702)))
    back = time.monotonic() - renewed
    stop.set()
    contender.join()
    check(not stolen, "%s never took the lock while %s's session lived (%s)" % (other, lead, stolen))
    check(tries[0] > 0 and back < SESSION_TTL, "%s was refused the lock %d times until %s renewed %.1fs after its "
          "last renewal on the restarted member" % (other, tries[0], lead, back))
    check(L._session == session, "update_leader after the restart: the same session, still the leader")
    check(F.get_cluster().leader.session == session, "get_cluster on %s: the lock is %s's session's" % (other, lead))

    # The leader stops renewing: the other takes the lock after the TTL, not before.
    L.get_cluster()
    renewed = time.monotonic()
    check(L.update_leader(50331800), "update_leader, the last renewal")
    tries = 0
    while not F.attempt_to_acquire_leader():
        tries += 1
        if time.monotonic() > renewed + TTL + 10:
            fail("%s never got the lock of the expired session" % other)
        time.sleep(0.2)
    after = time.monotonic() - renewed
    check(after >= TTL, "%s took the lock %.1fs after the last renewal (refused %d times), not before Patroni's "
          "ttl of %ds: twice the session's TTL, when Consul's server ends a session" % (other, after, tries, TTL))
    check(after <= TTL + 5, "...and within 5s more (an expiry tick, the lock delay, Patroni's retry)")
    c = F.get_cluster()
    check(c.leader.name == other and c.leader.session == F._session, "get_cluster: %s leads" % other)
    check([m.name for m in c.members] == [other], "get_cluster: %s's member key went with its session" % lead)
    check(L.get_cluster().leader.name == other and not L.attempt_to_acquire_leader(),
          "%s sees %s lead and cannot take the lock back" % (lead, other))

    check(F.touch_member(member_data(ports[other], 'master', state='stopped')), "touch_member stopped")
    wait_until("the stopped node's service gone", lambda: '%s/%s' % (SCOPE, other) not in services(reader))
    check(True, "deregister_service: %s/%s gone" % (SCOPE, other))
    check(F.delete_cluster(), "delete_cluster")
    sys.stdout.flush()


if __name__ == '__main__':
    main()
