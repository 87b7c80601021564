# Shared by the third-party client scripts of tests/e2e/thirdparty_test.go.
#
# Every script is run as: python3 SCRIPT URL0 URL1 URL2 (the client URLs of
# members m0, m1, m2) and prints normalized, deterministic lines: no lease,
# member or cluster IDs, no raft terms, no timestamps, no endpoints (each
# client URL is printed as <mN>). Revisions are printed as they are: the test
# pads the cluster to a fixed revision before each script.
import base64
import json
import sys
import threading
import time

URLS = sys.argv[1:]

# How long a script waits for any one condition (a watch event, a blocked
# lock, a thread) before it fails.
WAIT = 15.0


def host_port(i=0):
    """(host, port) of member i's client URL."""
    rest = URLS[i].split('://', 1)[1]
    host, port = rest.rsplit(':', 1)
    return host, int(port)


def section(name):
    print('\n=== ' + name, flush=True)


def out(*parts):
    print(' '.join(str(p) for p in parts), flush=True)


def norm_text(s):
    for i, u in enumerate(URLS):
        s = s.replace(u, '<m%d>' % i)
    return s


_IDS = ('cluster_id', 'member_id', 'raft_term')


def strip_ids(v):
    """v without header IDs and raft terms (they differ between clusters)."""
    if isinstance(v, dict):
        return {k: strip_ids(x) for k, x in v.items() if k not in _IDS}
    if isinstance(v, list):
        return [strip_ids(x) for x in v]
    return v


def show(v):
    """v as one line of JSON with sorted keys, bytes as text, IDs stripped."""
    def conv(x):
        if isinstance(x, (bytes, bytearray)):
            return x.decode('latin-1')
        if isinstance(x, tuple):
            return [conv(y) for y in x]
        if isinstance(x, dict):
            return {k: conv(y) for k, y in x.items()}
        if isinstance(x, list):
            return [conv(y) for y in x]
        if isinstance(x, set):
            return sorted(conv(y) for y in x)
        return x
    return norm_text(json.dumps(strip_ids(conv(v)), sort_keys=True))


def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode('latin-1')


def error_body(text):
    """An HTTP error body as one normalized line."""
    try:
        return show(json.loads(text))
    except ValueError:
        return norm_text(text.strip())


def wait_until(what, cond, timeout=WAIT):
    """Polls cond until it is true; fails the script after timeout."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit('timed out after %.0fs waiting for %s' % (timeout, what))
        time.sleep(0.02)


def run_bounded(what, fn, timeout=WAIT):
    """Runs fn in a thread and returns its result; fails after timeout."""
    box = {}

    def target():
        try:
            box['value'] = fn()
        except BaseException as e:  # reported in the caller's thread
            box['error'] = e
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise SystemExit('timed out after %.0fs: %s' % (timeout, what))
    if 'error' in box:
        raise box['error']
    return box.get('value')
