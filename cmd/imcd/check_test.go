package main

// End-to-end tests of `imcd -version` and `imcd -check` on the real binary.

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/store"
)

// runFlags runs the binary with args and returns its exit code, stdout and
// stderr; it must exit by itself within 20 s.
func runFlags(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	var out, errOut strings.Builder
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("imcd %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("imcd %v did not exit by itself:\n%s%s", args, out.String(), errOut.String())
	}
	if exit != nil {
		code = exit.ExitCode()
	}
	return code, out.String(), errOut.String()
}

// TestVersion: the version and commit the linker stamped (as
// scripts/build.sh does), and the Go version, even with a configuration
// file that does not exist (-version reads none).
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "imcd")
	if err := imcdproc.Build(bin, ".", "-ldflags", "-X main.version=9.8.7+test -X main.commit=0123456789abcdef"); err != nil {
		t.Fatalf("go build: %v", err)
	}
	code, out, errOut := runFlags(t, bin, "-version", "-config", "/nonexistent/imcd.conf")
	want := "imcd 9.8.7+test\ncommit 0123456789abcdef\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if code != 0 || out != want {
		t.Fatalf("imcd -version: exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, want)
	}
	// Without stamping (go build, go install) it still answers, from what
	// Go recorded in the binary.
	code, out, _ = runFlags(t, imcdBin, "-version")
	if code != 0 || !strings.HasPrefix(out, "imcd ") || !strings.Contains(out, "\ncommit ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("unstamped imcd -version: exit %d, %q", code, out)
	}
}

// checkConf writes a configuration file in dir and runs -check on it.
func checkConf(t *testing.T, dir string, lines ...string) (int, string) {
	t.Helper()
	conf := filepath.Join(dir, "imcd.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runFlags(t, imcdBin, "-check", "-config", conf)
	return code, out + errOut
}

// TestCheckStartsNothing: -check of a usable configuration exits 0 and
// says what would be used, while every port the configuration names is
// held by someone else, and leaves no database file and no FIFO behind.
func TestCheckStartsNothing(t *testing.T) {
	dir := t.TempDir()
	tcp := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln.Addr().String()
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	events, mi, metrics := tcp(), tcp(), tcp()
	fifo := filepath.Join(dir, "imcd_fifo")
	code, out := checkConf(t, dir, "data_dir = "+dir, "event_listen = tcp:"+events, "mi_http = "+mi,
		"mi_datagram = udp:"+udp.LocalAddr().String(), "metrics_listen = "+metrics, "mi_fifo = "+fifo)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"database       sqlite://" + filepath.Join(dir, "imcd.db") + " (embedded: db_url is empty): does not exist yet",
		"events         event_stream on tcp:" + events,
		"fifo " + fifo,
		"metrics        http://" + metrics + "/metrics",
		"\nhash_size = 4\n", // every key, as it would be used
		"\nconfiguration OK\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-check output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range []string{filepath.Join(dir, "imcd.db"), fifo} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("-check made %s (%v): it must create nothing", p, err)
		}
	}
}

// TestCheckDatabase: the tables are read as the daemon would read them.
func TestCheckDatabase(t *testing.T) {
	dir := t.TempDir()
	base := []string{"data_dir = " + dir, "mi_fifo = " + filepath.Join(dir, "imcd_fifo")}

	// An explicit SQLite file with OpenSIPS's two tables and nothing else.
	file := filepath.Join(dir, "opensips.db")
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite://" + file, CreateTables: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	url := "db_url = sqlite://" + file
	code, out := checkConf(t, dir, append(base, url)...)
	if code != 0 || !strings.Contains(out, "tables imc_rooms, imc_members usable") ||
		!strings.Contains(out, "history        off: its tables are missing") {
		t.Errorf("imc tables only, history auto: exit %d, want 0, the tables usable and the history off:\n%s", code, out)
	}
	code, out = checkConf(t, dir, append(base, url, "history = on")...)
	if code != 3 || !strings.Contains(out, `table "imc_history" does not exist`) {
		t.Errorf("history = on without its tables: exit %d, want 3 naming imc_history:\n%s", code, out)
	}
	code, out = checkConf(t, dir, append(base, url, "rooms_table = other_rooms")...)
	if code != 3 || !strings.Contains(out, `table "other_rooms" does not exist`) || !strings.Contains(out, "sql/sqlite/imc-create.sql") {
		t.Errorf("a rooms_table that does not exist: exit %d, want 3 naming it and the script:\n%s", code, out)
	}
	code, out = checkConf(t, dir, append(base, url, "rooms_table = other_rooms", "create_tables = yes")...)
	if code != 0 || !strings.Contains(out, "missing tables are created at start") {
		t.Errorf("missing tables with create_tables: exit %d, want 0:\n%s", code, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatal(err)
	}

	// A server that does not answer, with a password that must not show.
	code, out = checkConf(t, dir, append(base, "db_url = mysql://imcd:s3cr3t@127.0.0.1:1/imcd")...)
	if code != 3 || !strings.Contains(out, "database mysql://imcd:***@127.0.0.1:1/imcd") || strings.Contains(out, "s3cr3t") {
		t.Errorf("unreachable database: exit %d, want 3 naming it with the password hidden:\n%s", code, out)
	}
}

// TestCheckProblems: what the daemon would stop at, each said.
func TestCheckProblems(t *testing.T) {
	dir := t.TempDir()
	code, out := checkConf(t, dir, "data_dir = "+dir, "hash_size = 99")
	if code != 2 || !strings.Contains(out, "hash_size") {
		t.Errorf("invalid key: exit %d, want 2 naming it:\n%s", code, out)
	}
	code, out = checkConf(t, dir, "data_dir = "+dir, "mi_fifo = "+filepath.Join(dir, "missing", "imcd_fifo"))
	if code != 3 || !strings.Contains(out, "mi_fifo: directory "+filepath.Join(dir, "missing")) {
		t.Errorf("FIFO in a missing directory: exit %d, want 3 naming it:\n%s", code, out)
	}
	notFIFO := filepath.Join(dir, "plain")
	if err := os.WriteFile(notFIFO, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = checkConf(t, dir, "data_dir = "+dir, "mi_fifo = "+notFIFO)
	if code != 3 || !strings.Contains(out, "is not a FIFO") {
		t.Errorf("a file at the FIFO's path: exit %d, want 3:\n%s", code, out)
	}
}
