# Patroni's etcd3 DCS configured with etcd3.hosts (the usual patroni.yml) on a
# cluster with auth enabled: Patroni 3.0.2 lists the members before it
# authenticates. Run by tests/e2e/thirdparty_test.go after patroni_auth.py.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import section  # noqa: E402
from patroni_auth import admin, first_attempt, setup, teardown  # noqa: E402
from patroni_dcs import dcs  # noqa: E402


def main():
    setup()
    try:
        section('a node with credentials and the members as hosts')
        first_attempt('pg1', lambda: dcs('pg1', scope='secure', username='patroni', password='patronipw'))
        section('the member list without a token, as Patroni asks for it')
        admin('member list', '/cluster/member/list', {})
    finally:
        teardown()
    sys.stdout.flush()
    os._exit(0)  # Patroni's threads never end


if __name__ == '__main__':
    main()
