// Package testcache ties a test's cached result to the module's sources.
//
// `go test` caches a package's result and replays it while the test binary
// and the files and environment variables the test consulted are unchanged.
// Tests that build ./cmd/synod in a subprocess (the end-to-end and the
// verifier tests) do not consult synod's sources themselves, so a change to
// them would replay a stale "ok". Opening every source file from the test
// process records them in the cache key.
package testcache

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DependOnModuleSources opens every .go file, go.mod and go.sum under root
// (the module root), skipping testdata and hidden directories, so that the
// calling test's cached result is invalidated when any of them changes.
func DependOnModuleSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") && name != "go.mod" && name != "go.sum" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		return f.Close()
	})
}
