# Patroni's etcd3 DCS on a cluster with auth enabled, as RBAC deployments run
# it: a user whose role covers the cluster's prefix, token authentication,
# re-authentication after a token is refused, permission errors, a wrong
# password, no credentials. The users, role and auth switch are set up (and
# auth disabled again at the end) with plain HTTP calls to the gateway. Run by
# tests/e2e/thirdparty_test.go after patroni_dcs.py.
#
# Patroni is configured with etcd3.proxy (one URL, credentials in it), not
# etcd3.hosts: with hosts, Patroni 3.0.2 first lists the members without a
# token, which etcd refuses once auth is enabled (patroni_discovery_auth.py).
import json
import logging
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import URLS, WAIT, b64, error_body, norm_text, out, section, show  # noqa: E402
from patroni_dcs import NODES, dcs, leader_is, member_data, settle  # noqa: E402

import etcd  # noqa: E402
from patroni.dcs import etcd3  # noqa: E402
from patroni.dcs.etcd3 import Etcd3ClientError  # noqa: E402

PREFIX = '/service/secure/'


def call(path, body, token=None):
    """POSTs body to member m0's gateway; returns (status, parsed body)."""
    req = urllib.request.Request(URLS[0] + '/v3' + path, data=json.dumps(body).encode(), method='POST')
    if token:
        req.add_header('Authorization', token)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def admin(what, path, body, token=None):
    status, resp = call(path, body, token)
    out('admin', what, '->', status, error_body(resp) if isinstance(resp, str) else 'ok')
    return resp


def proxied(name, credentials):
    """Patroni's DCS for node name through etcd3.proxy, member m0's URL with credentials."""
    return dcs(name, scope='secure', proxy=URLS[0].replace('://', '://' + credentials, 1))


def setup():
    section('set up users and a role for the cluster prefix, enable auth')
    admin('add root', '/auth/user/add', {'name': 'root', 'password': 'rootpw'})
    admin('grant root', '/auth/user/grant', {'user': 'root', 'role': 'root'})
    admin('add role patroni', '/auth/role/add', {'name': 'patroni'})
    admin('grant it ' + PREFIX, '/auth/role/grant',
          {'name': 'patroni', 'perm': {'permType': 'READWRITE', 'key': b64(PREFIX), 'range_end': b64(PREFIX[:-1] + '0')}})
    admin('add user patroni', '/auth/user/add', {'name': 'patroni', 'password': 'patronipw'})
    admin('grant it the role', '/auth/user/grant', {'user': 'patroni', 'role': 'patroni'})
    admin('enable auth', '/auth/enable', {})


def client_error(what, fn):
    """Runs a Patroni client call and prints the etcd error Patroni made of the answer."""
    try:
        r = fn()
        out(what, '->', show(r if not isinstance(r, dict) else sorted(r)))
    except Etcd3ClientError as e:
        out(what, '!>', type(e).__name__, show(e.as_dict()))


def with_credentials():
    section('a node with credentials')
    NODES['pg1'] = pg1 = proxied('pg1', 'patroni:patronipw@')
    c = pg1._client
    out('pg1 authenticated:', c._token is not None)
    out('pg1 initialize', pg1.initialize(create_new=True, sysid='7000000000000000003'))
    out('pg1 touch_member', pg1.touch_member(member_data('pg1')))
    out('pg1 attempt_to_acquire_leader', pg1.attempt_to_acquire_leader())
    settle('pg1', 'pg1 leads', leader_is('pg1'))

    section('a token the server refuses: Patroni authenticates again and retries')
    old = c._token
    c._token = 'not-a-token'
    out('pg1 set_config_value', pg1.set_config_value('{"ttl":30}'))
    out('pg1 has a new token:', c._token not in (old, 'not-a-token', None))

    section('outside the role\'s prefix')
    client_error('pg1 range /service/other/', lambda: c.prefix('/service/other/'))
    client_error('pg1 put /service/other/x', lambda: c.put('/service/other/x', 'v'))


class StartRefused(Exception):
    """A Patroni client's first attempt to start failed (Patroni itself would retry forever)."""


def one_attempt(init):
    """Patroni's client constructor, raising StartRefused where Patroni would wait and retry."""
    def once(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except etcd.EtcdException as e:
            raise StartRefused(e)
    return once


def first_attempt(what, start):
    """Starts a Patroni DCS once: prints whether it started, or why not (the
    error Patroni made of the server's answer, and what it logged)."""
    logged = []

    class Recorder(logging.Handler):
        def emit(self, record):
            logged.append(record.getMessage())
    rec = Recorder(logging.ERROR)
    logging.getLogger('patroni').addHandler(rec)
    init = etcd3.PatroniEtcd3Client.__init__
    etcd3.PatroniEtcd3Client.__init__ = one_attempt(init)
    try:
        start()
        out(what, 'started')
    except StartRefused as e:
        out(what, 'refused:', repr(e.args[0]))
    finally:
        etcd3.PatroniEtcd3Client.__init__ = init
        logging.getLogger('patroni').removeHandler(rec)
    for m in sorted(norm_text(m) for m in logged):  # Patroni tries the hosts in a random order
        out('  logged:', m)


def without_credentials():
    section('a wrong password (Patroni retries forever: the first attempt is shown)')
    first_attempt('pg2', lambda: proxied('pg2', 'patroni:wrong@'))

    section('a client without credentials (pg1\'s, its credentials and token dropped)')
    c = NODES['pg1']._client
    saved = c.username, c.password, c._token
    c.username = c.password = c._token = None
    logging.disable(logging.CRITICAL)  # Patroni logs "Username or password not set" for each
    client_error('put', lambda: c.put(PREFIX + 'x', 'v'))
    client_error('range', lambda: c.prefix(PREFIX))
    client_error('lease grant', lambda: c.lease_grant(30))
    logging.disable(logging.NOTSET)
    c.username, c.password, c._token = saved


def teardown():
    section('disable auth, remove the users and the role')
    status, resp = call('/auth/authenticate', {'name': 'root', 'password': 'rootpw'})
    out('root authenticates ->', status)
    admin('disable auth', '/auth/disable', {}, token=resp['token'])
    admin('delete user patroni', '/auth/user/delete', {'name': 'patroni'})
    admin('delete role patroni', '/auth/role/delete', {'role': 'patroni'})
    admin('delete root', '/auth/user/delete', {'name': 'root'})


def main():
    setup()
    try:
        with_credentials()
        without_credentials()
    finally:
        teardown()
    NODES['pg1'].delete_cluster()
    sys.stdout.flush()
    os._exit(0)  # Patroni's watcher threads never end


if __name__ == '__main__':
    main()
