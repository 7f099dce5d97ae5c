package admin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The admin package names Trustee's problem variants with the kbs
// package's constants and keeps no copy of their values, so that the two
// cannot drift apart.
func TestNoCopiedKBSProblemVariants(t *testing.T) {
	kbsValues := map[string]string{}
	for name, value := range stringConstants(t, filepath.Join("..", "kbs", "problem.go")) {
		if strings.HasPrefix(name, "Problem") {
			kbsValues[value] = name
		}
	}
	if len(kbsValues) == 0 {
		t.Fatal("kbs/problem.go declares no Problem constants")
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		for name, value := range stringConstants(t, file) {
			if kbsName, ok := kbsValues[value]; ok {
				t.Errorf("%s: constant %s copies %q; use kbs.%s", file, name, value, kbsName)
			}
		}
	}
}

// stringConstants returns the string constants that file declares at
// package level, by name.
func stringConstants(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if value, err := strconv.Unquote(lit.Value); err == nil {
					out[name.Name] = value
				}
			}
		}
	}
	return out
}
