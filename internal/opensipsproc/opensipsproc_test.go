package opensipsproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary returns the OpenSIPS binary of EnvBinary, or skips the test.
func binary(t *testing.T) string {
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		t.Skip("no real OpenSIPS: set " + EnvBinary + " to …/sbin/opensips of an unpacked build (scripts/test.sh does when it finds one)")
	}
	return bin
}

func TestReadFragment(t *testing.T) {
	f, err := ReadFragment("../../scripts/opensips/imcd.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !f.loads("event_stream.so") || !f.loads("tm.so") {
		t.Errorf("modules: %q", f.Modules)
	}
	if len(f.MainRoute) == 0 || !strings.Contains(strings.Join(f.MainRoute, "\n"), "route(imcd)") {
		t.Errorf("main route: %q", f.MainRoute)
	}
	if len(f.Routes) != 1 || !strings.HasPrefix(f.Routes[0], "route[imcd]") {
		t.Errorf("routes: %q", f.Routes)
	}
	mods := f.modules(map[string]string{"mi_datagram/socket_name": `"udp:127.0.0.1:1"`, "tm/fr_timeout": "3"})
	all := strings.Join(mods, "\n")
	if !strings.Contains(all, `modparam("mi_datagram", "socket_name", "udp:127.0.0.1:1")`) || strings.Contains(all, "8080") {
		t.Errorf("override not applied: %s", all)
	}
	if !strings.Contains(all, `modparam("tm", "fr_timeout", 3)`) {
		t.Errorf("fr_timeout: %s", all)
	}
}

func TestStartStop(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	p, err := Start(context.Background(), Options{Bin: bin, Dir: dir, Fragment: "../../scripts/opensips/imcd.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := p.Processes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mi, workers int
	for _, pr := range ps {
		switch {
		case pr.Type == "MI Datagram":
			mi++
		case strings.HasPrefix(pr.Type, "SIP receiver udp"):
			workers++
		}
		if _, err := CPUTime(pr.PID); err != nil {
			t.Error(err)
		}
	}
	if mi != 1 || workers != 4 {
		t.Errorf("processes: %+v", ps)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "opensips.cfg")); err != nil {
		t.Error(err)
	}
}
