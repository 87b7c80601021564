"""Drive synod's Consul API with python-consul2 (Debian's python3-consul2),
a client this project did not write. Usage: client.py HOST:PORT HOST:PORT HOST:PORT
(one Consul API per member). Prints one line per step; exits 1 on the first
step that does not behave as Consul does, 3 when the client is not
python-consul2."""
import sys
import threading
import time

import consul


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def main():
    if not consul.__version__.startswith("0.1."):
        print("SKIP: the consul module is %s, not python-consul2 0.1.x" % consul.__version__)
        sys.exit(3)
    cs = []
    for hp in sys.argv[1:4]:
        host, port = hp.rsplit(":", 1)
        cs.append(consul.Consul(host=host, port=int(port)))
    a, b, r = cs

    check(a.agent.service.register("pyweb", service_id="pyweb-0", port=9000, tags=["py"],
                                   check=consul.Check.ttl("10m")), "register pyweb-0 on member 0")
    check(b.agent.service.register("pyweb", service_id="pyweb-1", port=9001,
                                   check=consul.Check.ttl("10m")), "register pyweb-1 on member 1")
    check(a.agent.check.ttl_pass("service:pyweb-0", "fine"), "pass pyweb-0's TTL check")

    idx, nodes = r.health.service("pyweb", passing=True)
    ids = sorted(n["Service"]["ID"] for n in nodes)
    check(ids == ["pyweb-0"], "member 2 sees pyweb-0 alone passing (got %s)" % ids)
    check(int(idx) > 0, "an X-Consul-Index came back (%s)" % idx)

    got = {}

    def block():
        start = time.time()
        got["idx"], got["nodes"] = r.health.service("pyweb", index=idx, wait="20s", passing=True)
        got["took"] = time.time() - start

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.5)
    check(t.is_alive(), "a blocking query on that index waits")
    check(b.agent.check.ttl_pass("service:pyweb-1"), "pass pyweb-1's TTL check")
    t.join(10)
    check(not t.is_alive() and got["took"] < 10, "the blocking query returned on the change")
    check(int(got["idx"]) > int(idx), "with a higher index (%s > %s)" % (got["idx"], idx))
    check(len(got["nodes"]) == 2, "and both instances passing")

    start = time.time()
    idx2, _ = r.health.service("pyweb", index=got["idx"], wait="1s", passing=True)
    took = time.time() - start
    check(idx2 == got["idx"] and took >= 1, "with nothing changed it waits 1s and keeps the index")

    _, services = r.catalog.services()
    check(services.get("pyweb") == ["py"], "catalog services lists pyweb with tag py (got %s)" % services.get("pyweb"))
    check(r.agent.self()["Config"]["Datacenter"] == "dc1", "agent self names dc1")
    check(r.status.leader() != "" and len(r.status.peers()) == 3, "status leader and 3 peers")

    try:
        a.agent.service.register("", service_id="x")
        fail("a registration without a name was accepted")
    except consul.base.ConsulException as e:
        check("400" in str(e) and "Missing service name" in str(e), "a nameless registration: %s" % e)

    check(a.agent.service.deregister("pyweb-0") and b.agent.service.deregister("pyweb-1"), "deregister both")
    _, nodes = r.catalog.service("pyweb")
    check(nodes == [], "member 2 sees no pyweb left")


main()
