// Package lint holds repository-wide checks: every package has a package
// doc comment, every exported name has a doc comment, and the pure core
// packages import nothing that does network I/O.
package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// packages returns the directories of the module's non-test Go packages.
func packages(t *testing.T) map[string][]*ast.File {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	out := map[string][]*ast.File{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(p))
		out[dir] = append(out[dir], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryPackageAndExportedNameIsDocumented(t *testing.T) {
	for dir, files := range packages(t) {
		hasDoc := false
		for _, f := range files {
			if f.Doc != nil {
				hasDoc = true
			}
			for _, decl := range f.Decls {
				for _, name := range undocumented(decl) {
					t.Errorf("%s: exported %s has no doc comment", dir, name)
				}
			}
		}
		if !hasDoc {
			t.Errorf("%s: package has no package doc comment", dir)
		}
	}
}

// undocumented lists the exported names a declaration leaves without a doc.
func undocumented(decl ast.Decl) []string {
	var out []string
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Name.IsExported() && d.Doc == nil && (d.Recv == nil || exportedRecv(d.Recv)) {
			out = append(out, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if s.Name.IsExported() && s.Doc == nil && d.Doc == nil {
					out = append(out, s.Name.Name)
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	return out
}

func exportedRecv(fl *ast.FieldList) bool {
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// The pure core does no network I/O of its own.
func TestPureCoreImportsNoNetwork(t *testing.T) {
	pure := []string{"mvcc", "watch", "record", "lease", "membership", "alarm", "auth", "compactor", "catalog", "statemachine", "healthcheck", "consulkv"}
	// The edge the state machine must not reach into (it is handed what it needs).
	edge := []string{"/server", "/transport", "/etcdapi", "/gateway", "/etcdhttp"}
	pkgs := packages(t)
	for _, dir := range pure {
		for _, f := range pkgs[dir] {
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if path == "net" || strings.HasPrefix(path, "net/") || strings.HasPrefix(path, "google.golang.org/grpc") {
					t.Errorf("%s imports %s; the pure core must not do network I/O", dir, path)
				}
				for _, e := range edge {
					if strings.HasPrefix(path, "github.com/synod-db/synod") && strings.HasSuffix(path, e) {
						t.Errorf("%s imports %s; the pure core must not depend on the edge", dir, path)
					}
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "mvcc")); err != nil {
		t.Fatalf("repository layout changed: %v", err)
	}
}
