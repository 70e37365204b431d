package doccheck

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const root = "../.."

// TestArchitectureImports: every package of the module has a row in
// docs/ARCHITECTURE.md's table, and the row names exactly the imcd
// packages and outside modules the package's non-test files import.
func TestArchitectureImports(t *testing.T) {
	module, requires := readGoMod(t)
	rows := readTable(t)
	pkgs := packages(t, module)
	for dir, imports := range pkgs {
		row, ok := rows[dir]
		if !ok {
			t.Errorf("%s has no row in docs/ARCHITECTURE.md", dir)
			continue
		}
		var own, outside []string
		for _, imp := range imports {
			switch {
			case strings.HasPrefix(imp, module+"/"):
				own = append(own, shortName(strings.TrimPrefix(imp, module+"/")))
			case strings.Contains(strings.Split(imp, "/")[0], "."):
				outside = append(outside, moduleName(t, imp, requires))
			}
		}
		own, outside = uniqueSorted(own), uniqueSorted(outside)
		if !slices.Equal(own, row.own) {
			t.Errorf("%s imports imcd packages %v; docs/ARCHITECTURE.md says %v", dir, own, row.own)
		}
		if !slices.Equal(outside, row.outside) {
			t.Errorf("%s imports outside modules %v; docs/ARCHITECTURE.md says %v", dir, outside, row.outside)
		}
	}
	for dir := range rows {
		if _, ok := pkgs[dir]; !ok {
			t.Errorf("docs/ARCHITECTURE.md has a row for %s, which is no package (or has only tests)", dir)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("only %d packages found: the walk is broken", len(pkgs))
	}
}

// shortName is how the table names an imcd package: "pkg/imc" is "imc",
// "pkg/store/dburl" "store/dburl", "internal/imcdproc" stays as it is.
func shortName(rel string) string { return strings.TrimPrefix(rel, "pkg/") }

type row struct{ own, outside []string }

var rowRE = regexp.MustCompile("^\\| `([^`]+)` \\|[^|]*\\|([^|]*)\\|([^|]*)\\|$")

// readTable reads the package table: | `dir` | owns | imcd | outside |.
func readTable(t *testing.T) map[string]row {
	f, err := os.Open(filepath.Join(root, "docs/ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]row{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := rowRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		rows[m[1]] = row{own: names(m[2]), outside: names(m[3])}
	}
	if len(rows) == 0 {
		t.Fatal("no package table in docs/ARCHITECTURE.md")
	}
	return rows
}

func names(cell string) []string {
	var out []string
	for _, n := range strings.Split(cell, ",") {
		if n = strings.TrimSpace(n); n != "" && n != "—" {
			out = append(out, n)
		}
	}
	return uniqueSorted(out)
}

// packages maps each package directory (relative to the module root) with
// non-test Go files to what those files import.
func packages(t *testing.T, module string) map[string][]string {
	out := map[string][]string{}
	for _, top := range []string{"cmd", "pkg", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			imports := out[rel]
			for _, imp := range f.Imports {
				imports = append(imports, strings.Trim(imp.Path.Value, `"`))
			}
			out[rel] = imports
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readGoMod returns the module path and every required module path.
func readGoMod(t *testing.T) (string, []string) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var module string
	var requires []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case strings.HasPrefix(line, "module "):
			module = strings.TrimSpace(strings.TrimPrefix(line, "module "))
		case len(f) >= 2 && strings.Contains(f[0], ".") && strings.HasPrefix(f[1], "v"):
			requires = append(requires, f[0])
		}
	}
	return module, requires
}

// moduleName is how the table names an outside module: the last element of
// its module path without a major-version suffix ("github.com/jackc/pgx/v5"
// is "pgx").
func moduleName(t *testing.T, imp string, requires []string) string {
	best := ""
	for _, m := range requires {
		if (imp == m || strings.HasPrefix(imp, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		t.Errorf("%s is not in go.mod", imp)
		return imp
	}
	parts := strings.Split(best, "/")
	last := parts[len(parts)-1]
	if regexp.MustCompile(`^v[0-9]+$`).MatchString(last) && len(parts) > 1 {
		last = parts[len(parts)-2]
	}
	return last
}

func uniqueSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
