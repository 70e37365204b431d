package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSmoke builds imcd and runs a tiny version of every SQLite scenario
// against it: the tool works end to end and every row has figures.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs imcd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "imcd")
	goBin, err := exec.LookPath("go")
	if err != nil {
		// scripts/test.sh puts its Go on PATH; this is for a bare `go test`
		// from a toolchain that is not (the test binary was built by it).
		//lint:ignore SA1019 no other way to find the toolchain that built us
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goBin, "build", "-o", bin, "../imcd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building imcd: %v\n%s", err, out)
	}
	md := filepath.Join(dir, "out.md")
	var stdout, stderr strings.Builder
	code, err := run([]string{"-imcd", bin, "-quick", "-scenarios", "fanout,latency,commands,scale", "-duration", "500ms", "-warmup", "100ms", "-sizes", "10",
		"-transports", "stream,datagram", "-rates", "500", "-cmd-db", "sqlite", "-cmd-concurrency", "2",
		"-scale", "100", "-scale-db", "sqlite", "-markdown", md}, &stdout, &stderr)
	if code != 0 || err != nil {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| stream | 10 |", "| datagram | 10 |", "| stream | 500 |", "SQLite (WAL, synchronous=FULL) | 2 |", "| SQLite | 100 | 1,000 |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "| - | - |") { // a skipped row; a single "-" is a column that does not apply
		t.Errorf("a row without figures:\n%s", b)
	}
}
