package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeCurlMarker precedes the README's curl block.
const readmeCurlMarker = "<!-- tests/e2e/readme_curl_test.go runs this block as written"

// readmeCurlBlock returns the shell block that follows the marker.
func readmeCurlBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), readmeCurlMarker)
	if !ok {
		t.Fatal("README.md has no curl block marker")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README.md: no ```sh block after the curl marker")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md: unterminated curl block")
	}
	return block
}

// TestReadmeCurl runs the README's curl session, as written but for the
// port, against a fresh member of each kind, and checks what a person
// would read: the value read back, the leased key gone after 6 s, the lock
// holder, and the watch's event.
func TestReadmeCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("LOUD SKIP: curl is not installed, so the README's curl session cannot be run (apt-get install curl)")
	}
	block := readmeCurlBlock(t)
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			requireKind(t, kind)
			cl := startCluster(t, kind, 1)
			script := strings.ReplaceAll(block, "127.0.0.1:2379", cl.Members[0].Endpoint)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("the README's curl block failed: %v\n%s", err, out)
			}
			checkReadmeCurlOutput(t, string(out))
		})
	}
}

// checkReadmeCurlOutput checks the session's lines: the first nine in
// order, then the watch's lines and the last put's answer in any order
// (the watch prints as events arrive).
func checkReadmeCurlOutput(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	ordered := []string{
		`^\{"header":\{[^}]*"revision":"2"`,              // put
		`"kvs":\[\{"key":"aGVsbG8=".*"value":"d29ybGQ="`, // range
		`"ID":"7",\s*"TTL":"5"`,                          // lease grant
		`^\{"header":\{[^}]*"revision":"3"[^}]*\}\}$`,    // put with the lease
		`^\{"header":\{[^}]*"revision":"4"[^}]*\}\}$`,    // range after expiry: revision 4 (the expiry's delete), no kvs
		`"ID":"8",\s*"TTL":"30"`,                         // lease grant
		`"key":"bXlsb2NrLzg="`,                           // lock
		`"kvs":\[\{"key":"bXlsb2NrLzg=".*"lease":"8"`,    // the holder
		`^\{"header":\{[^}]*"revision":"6"[^}]*\}\}$`,    // unlock deletes the holder's key
	}
	// The watch prints from the background, so its lines may land inside
	// the last put's; only their content is checked.
	if len(lines) <= len(ordered) {
		t.Fatalf("README curl session printed %d lines, want more than %d:\n%s", len(lines), len(ordered), out)
	}
	for i, re := range ordered {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i+1, lines[i], re)
		}
	}
	rest := strings.Join(lines[len(ordered):], "\n")
	for _, want := range []string{`"created":true`, `"events":[{"kv":{"key":"aGVsbG8="`, `"value":"YWdhaW4="`} {
		if !strings.Contains(strings.ReplaceAll(rest, " ", ""), want) {
			t.Errorf("the watch part lacks %s:\n%s", want, rest)
		}
	}
}
