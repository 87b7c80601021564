package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConsulClientsPatroniTemplate runs two more Consul clients nothing in
// this project wrote against one 3-member synod with a Consul API on each
// member: Patroni's Consul DCS (Debian's patroni 3.0) and HashiCorp's
// consul-template (the real binary, built from its module). Each is skipped
// loudly when it cannot be had; the cluster is not started when neither can.
func TestConsulClientsPatroniTemplate(t *testing.T) {
	requireKind(t, "synod")
	py := debianPython(t)
	patroniWhy := pythonModules(py, thirdPartyClient{name: "patroni consul dcs",
		imports: "patroni.dcs.consul, consul", packages: "patroni python3-consul2"})
	ctBin, ctWhy := installConsulTemplate(t)
	if patroniWhy != "" && ctWhy != "" {
		t.Skipf("SKIPPING PATRONI'S CONSUL DCS AND CONSUL-TEMPLATE: %s; %s", patroniWhy, ctWhy)
	}
	cc := startConsulCluster(t)
	t.Run("patroni consul dcs", func(t *testing.T) {
		if patroniWhy != "" {
			t.Skip(patroniWhy)
		}
		testPatroniConsul(t, cc, py)
	})
	t.Run("consul-template", func(t *testing.T) {
		if ctWhy != "" {
			t.Skip(ctWhy)
		}
		testConsulTemplate(t, cc, ctBin)
	})
}

// testPatroniConsul runs testdata/consul_patroni/patroni_consul.py, which
// drives patroni.dcs.consul.Consul for two nodes, pg1 on member 0 and pg2
// on member 1, and checks each step itself. The Patroni calls it makes:
// Consul() (session.create with Patroni's TTL), initialize (a race of the
// two, cas=0), touch_member (a KV put acquired by the node's session, and
// register_service / deregister_service of its Consul service with an HTTP
// check, read back as passing from member 2), attempt_to_acquire_leader (a
// race of the two: session renew, then a KV acquire), update_leader
// (session renew, the leader key kept, status written), get_cluster (a
// recursive KV read), manual_failover (set_failover_value, and its clear
// at its index), delete_cluster. It asks this test to kill -9 the member the
// leader talks to: the leader's update_leader fails, the other node is
// refused the lock until just before the session's TTL, and after the
// restart the leader renews the same session and still holds the lock. Then
// the leader stops renewing: the other node's repeated
// attempt_to_acquire_leader is refused until the TTL has passed since the
// last renewal and succeeds within twice the TTL, and the old leader's
// member key is gone with its session.
func testPatroniConsul(t *testing.T, cc *consulCluster, py string) {
	script := filepath.Join(moduleRoot, "tests", "e2e", "testdata", "consul_patroni", "patroni_consul.py")
	args := []string{script}
	for _, u := range cc.urls {
		args = append(args, strings.TrimPrefix(u, "http://"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PYTHONPATH=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(&out, "%6.1fs %s\n", time.Since(start).Seconds(), line)
		if err := patroniHarnessStep(cc, line, stdin); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("SKIPPING PATRONI'S CONSUL DCS: %s", strings.TrimSpace(out.String()))
	}
	if err != nil {
		t.Fatalf("patroni_consul.py: %v\n%s\nstderr:\n%s", err, out.String(), tail(stderr.String(), 40))
	}
	t.Logf("patroni_consul.py, %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
}

// patroniHarnessStep does what a line of the script asks ("KILL i": kill -9
// member i; "RESTART i": start it again and wait until it is ready) and
// answers on its standard input; other lines ask nothing.
func patroniHarnessStep(cc *consulCluster, line string, stdin io.Writer) error {
	cmd, arg, ok := strings.Cut(line, " ")
	if !ok || (cmd != "KILL" && cmd != "RESTART") {
		return nil
	}
	i, err := strconv.Atoi(arg)
	if err != nil || i < 0 || i >= len(cc.Members) {
		return fmt.Errorf("no member %q", arg)
	}
	if cmd == "KILL" {
		cc.Kill9(i)
	} else {
		cc.Restart(i)
	}
	_, err = io.WriteString(stdin, "done\n")
	return err
}
