package logkey

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// keyStart is, for each logging call, the index of its first attribute
// key: slog's Debug/Info/Warn/Error(msg, args...), Log(ctx, level, msg,
// args...), With(args...), the daemon's notice(msg, args...) and
// logging.Notice(logger, msg, args...).
var keyStart = map[string]int{"Debug": 1, "Info": 1, "Warn": 1, "Error": 1, "Log": 3, "With": 0, "notice": 1, "Notice": 2}

// TestKeysFromHere: no log record of imcd's code spells a key as a string
// literal: every key is one of this package's constants, so that two
// components cannot call one thing by two keys.
func TestKeysFromHere(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "http" {
					return true // http.Error(w, text, code)
				}
				name = fn.Sel.Name
			case *ast.Ident:
				name = fn.Name
			}
			start, ok := keyStart[name]
			if !ok {
				return true
			}
			for i := start; i < len(call.Args); i += 2 {
				if lit, ok := call.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					t.Errorf("%s: log key %s spelled out: use a pkg/logkey constant", fset.Position(lit.Pos()), lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d files checked: the walk is broken", checked)
	}
}
