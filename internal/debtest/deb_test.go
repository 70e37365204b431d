package debtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
)

const (
	root     = "../.."
	pkgName  = "imcd"
	userName = "imcd"
	binPath  = "/usr/sbin/imcd"
	confPath = "/etc/imcd/imcd.conf"
	// dataDir and runDir are what the maintainer scripts make, and the
	// packaged configuration's data_dir and FIFO directory.
	dataDir = "/var/lib/imcd"
	runDir  = "/run/imcd"
)

// TestPackage builds the .deb and takes it through a whole life: install,
// run, remove while running, purge.
func TestPackage(t *testing.T) {
	requireMachine(t)
	deb := buildDeb(t)
	lintian(t, deb)
	paths := contents(t, deb)
	checkContents(t, paths)

	installed := false
	t.Cleanup(func() {
		if installed { // a failure left it installed: do not leave it behind
			out, err := exec.Command("dpkg", "--purge", pkgName).CombinedOutput()
			if err != nil {
				t.Logf("cleanup: dpkg --purge: %v\n%s", err, out)
			}
		}
	})
	cmd(t, "dpkg", "--install", deb)
	installed = true
	checkInstalled(t, deb)

	// -check, as the user the service runs as, with the installed file.
	if out, err := asImcd(exec.Command(binPath, "-check", "-config", confPath)).CombinedOutput(); err != nil {
		t.Fatalf("imcd -check of the installed configuration: %v\n%s", err, out)
	}

	p := startInstalled(t)
	db := filepath.Join(dataDir, "imcd.db")
	if st, err := os.Stat(db); err != nil {
		t.Errorf("the embedded database: %v", err)
	} else if o, _ := owners(st); o != userName {
		t.Errorf("%s is owned by %s: want it made by imcd", db, o)
	}

	// Removing the package stops the imcd that runs its binary: there is
	// no systemd here, so prerm must do it itself.
	cmd(t, "dpkg", "--remove", pkgName)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("dpkg --remove returned and imcd (pid %d) still runs; log:\n%s", p.cmd.Process.Pid, p.log())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("imcd stopped by prerm exited with %d, want 0 (a clean drain); log:\n%s", code, p.log())
	}
	for _, kept := range []string{confPath, dataDir} { // a remove keeps configuration and data
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("after dpkg --remove: %v; the configuration and the data stay until purge", err)
		}
	}
	if _, err := os.Stat(binPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after dpkg --remove, %s: %v", binPath, err)
	}

	cmd(t, "dpkg", "--purge", pkgName)
	installed = false
	checkPurged(t, paths)
}

// requireMachine skips (fails under IMCD_TEST_REQUIRE_DB) unless the test
// can install a package here without harming anything.
func requireMachine(t *testing.T) {
	unable := t.Skipf
	if os.Getenv("IMCD_TEST_REQUIRE_DB") != "" {
		unable = t.Fatalf
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		unable("the package test installs a package and creates a user: it needs root on Debian (CI runs it as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "adduser", "lintian", "start-stop-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			unable("the package test needs %s (Debian; scripts/test-services.sh installs lintian): %v", tool, err)
		}
	}
	if out, _ := exec.Command("dpkg-query", "--show", "--showformat=${Status}", pkgName).Output(); len(out) > 0 &&
		!strings.Contains(string(out), "not-installed") {
		unable("the package %s is on this machine (%s): the test would remove it", pkgName, out)
	}
	if _, err := user.Lookup(userName); err == nil {
		unable("a user %s exists on this machine: the test would delete it", userName)
	}
}

// buildDeb runs `make deb`'s script into a temporary directory and checks
// the file's name: imcd_<version>_<arch>.deb.
func buildDeb(t *testing.T) string {
	out := t.TempDir()
	build := exec.Command(filepath.Join(root, "scripts/deb/build.sh"), out)
	build.Env = append(os.Environ(), "GO="+imcdproc.GoTool())
	b, err := build.Output()
	if err != nil {
		t.Fatalf("scripts/deb/build.sh: %v\n%s", err, stderrOf(err))
	}
	deb := strings.TrimSpace(string(b))
	version := strings.TrimSpace(cmd(t, filepath.Join(root, "scripts/version.sh")))
	arch := strings.TrimSpace(cmd(t, "dpkg-deb", "--field", deb, "Architecture"))
	if want := filepath.Join(out, fmt.Sprintf("%s_%s_%s.deb", pkgName, version, arch)); deb != want {
		t.Fatalf("built %s, want %s", deb, want)
	}
	if v := strings.TrimSpace(cmd(t, "dpkg-deb", "--field", deb, "Version")); v != version {
		t.Fatalf("control says version %s, scripts/version.sh %s", v, version)
	}
	return deb
}

// lintian fails the test on any error lintian reports (warnings that
// cannot be avoided are overridden, with the reason, in
// scripts/deb/lintian-overrides).
func lintian(t *testing.T, deb string) {
	out, err := exec.Command("lintian", "--fail-on", "error", deb).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	var errs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") {
			errs = append(errs, l)
		}
	}
	if err != nil || len(errs) > 0 {
		t.Errorf("lintian reports errors (%v):\n%s", err, strings.Join(errs, "\n"))
	}
}

// contents lists the package's paths ("/usr/sbin/imcd", "/etc/imcd/", …).
func contents(t *testing.T, deb string) []string {
	var paths []string
	for _, l := range strings.Split(cmd(t, "dpkg-deb", "--contents", deb), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if p := strings.TrimPrefix(f[5], "."); p != "/" {
			paths = append(paths, p)
		}
	}
	return paths
}

// checkContents: the binary, the conffile, the unit, and everything the
// repository ships for operators (SQL scripts, OpenSIPS fragments,
// monitoring, docs) where Debian wants it.
func checkContents(t *testing.T, paths []string) {
	have := map[string]bool{}
	for _, p := range paths {
		have[p] = true
	}
	want := []string{binPath, confPath, "/lib/systemd/system/imcd.service", "/usr/lib/tmpfiles.d/imcd.conf",
		"/usr/share/doc/imcd/copyright", "/usr/share/doc/imcd/changelog.gz", "/usr/share/doc/imcd/README.md",
		"/usr/share/man/man8/imcd.8.gz", "/usr/share/imcd/rabbitmq-setup.sh"}
	// Each file matching base/pattern in the repository is dir/pattern's
	// match in the package.
	shipped := func(base, pattern, dir string) {
		files, _ := filepath.Glob(filepath.Join(root, base, pattern))
		if len(files) == 0 {
			t.Fatalf("no %s/%s in the repository", base, pattern)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(root, base), f)
			want = append(want, filepath.Join(dir, rel))
		}
	}
	shipped("sql", "*/*.sql", "/usr/share/imcd/sql")
	shipped("scripts/opensips", "*.cfg", "/usr/share/imcd/opensips")
	shipped("scripts/monitoring", "*", "/usr/share/imcd/monitoring")
	shipped("docs", "*.md", "/usr/share/doc/imcd/docs")
	for _, p := range want {
		if !have[p] {
			t.Errorf("the package has no %s", p)
		}
	}
}

// checkInstalled: the user, its directories, the file modes, the unit.
func checkInstalled(t *testing.T, deb string) {
	u, err := user.Lookup(userName)
	if err != nil {
		t.Fatalf("after dpkg --install: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || uid == 0 {
		t.Errorf("user imcd has uid %d: want a system user", uid)
	}
	if u.HomeDir != dataDir {
		t.Errorf("user imcd's home is %s, want %s", u.HomeDir, dataDir)
	}
	f := func(path, owner string, mode fs.FileMode) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("after dpkg --install: %v", err)
			return
		}
		if o, g := owners(st); o+":"+g != owner || st.Mode().Perm() != mode {
			t.Errorf("%s is %s:%s %04o, want %s %04o", path, o, g, st.Mode().Perm(), owner, mode)
		}
	}
	f(dataDir, "imcd:imcd", 0o750)
	f(runDir, "imcd:imcd", 0o750)
	f(confPath, "root:imcd", 0o640)
	f(binPath, "root:root", 0o755)
	unit := cmd(t, "cat", "/lib/systemd/system/imcd.service")
	if !strings.Contains(unit, "\nExecStart=/usr/sbin/imcd -config /etc/imcd/imcd.conf\n") || strings.Contains(unit, "/usr/local") {
		t.Errorf("the installed unit does not run /usr/sbin/imcd:\n%s", unit)
	}
	version := strings.TrimSpace(cmd(t, "dpkg-deb", "--field", deb, "Version"))
	if out := cmd(t, binPath, "-version"); !strings.HasPrefix(out, "imcd "+version+"\n") {
		t.Errorf("imcd -version says %q, the package is %s", out, version)
	}
}

// installed is the packaged imcd running as the imcd user.
type installed struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	started chan string // the metrics address, from the "imcd started" record
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (p *installed) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// listenKeys are the packaged configuration's sockets: when one of its
// ports is taken on this machine (another imcd, a real OpenSIPS), the test
// moves them all to ports the kernel picks.
var listenKeys = []string{"-event_listen", "tcp:127.0.0.1:0", "-mi_datagram", "udp:127.0.0.1:0",
	"-mi_http", "127.0.0.1:0", "-metrics_listen", "127.0.0.1:0"}

// startInstalled runs /usr/sbin/imcd as imcd with the installed
// configuration until /healthz answers.
func startInstalled(t *testing.T) *installed {
	p, err := start(t)
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		t.Logf("a port of the packaged configuration is taken on this machine (%v): every socket moves to port 0", err)
		p, err = start(t, listenKeys...)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// start runs imcd and waits for its "imcd started" record and /healthz;
// it returns the log as the error when imcd exits first.
func start(t *testing.T, extra ...string) (*installed, error) {
	p := &installed{exited: make(chan struct{}), started: make(chan string, 1)}
	p.cmd = asImcd(exec.Command(binPath, append([]string{"-config", confPath}, extra...)...))
	p.cmd.Dir = "/"
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stderr)
	var metrics string
	select {
	case metrics = <-p.started:
	case <-p.exited:
		return nil, fmt.Errorf("installed imcd exited with %d before it started:\n%s", p.cmd.ProcessState.ExitCode(), p.log())
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		return nil, fmt.Errorf("installed imcd did not start within 60s:\n%s", p.log())
	}
	if _, _, err := net.SplitHostPort(metrics); err != nil {
		_ = p.cmd.Process.Kill()
		return nil, fmt.Errorf("the packaged configuration's metrics_listen is %q: /healthz cannot be asked", metrics)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + metrics + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Logf("installed imcd answers /healthz at %s: %s", metrics, bytes.TrimSpace(body))
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			return nil, fmt.Errorf("/healthz at %s did not answer 200 within 30s (%v):\n%s", metrics, err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startedRE picks the metrics address out of the text log's "imcd started".
var startedRE = regexp.MustCompile(`msg="imcd started".* metrics=("[^"]*"|\S+)`)

// read keeps imcd's log, reports the metrics address once imcd started, and
// reaps the process.
func (p *installed) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		p.mu.Lock()
		p.buf.Write(sc.Bytes())
		p.buf.WriteByte('\n')
		p.mu.Unlock()
		if m := startedRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
			p.started <- strings.Trim(m[1], `"`)
			sent = true
		}
	}
	_ = p.cmd.Wait()
	close(p.exited)
}

// asImcd makes c run as the imcd user and its groups.
func asImcd(c *exec.Cmd) *exec.Cmd {
	u, err := user.Lookup(userName)
	if err != nil {
		panic(err) // checkInstalled saw it
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig: syscall.SIGKILL}
	return c
}

// checkPurged: nothing the package installed or made is left: its files,
// its directories, the user and group, the mode override, systemd's state.
func checkPurged(t *testing.T, paths []string) {
	if out, _ := exec.Command("dpkg-query", "--show", "--showformat=${Status}", pkgName).Output(); len(out) > 0 &&
		!strings.Contains(string(out), "not-installed") {
		t.Errorf("after dpkg --purge, dpkg says %s", out)
	}
	left := []string{}
	for _, p := range append(paths, dataDir, runDir, "/etc/imcd") {
		if !strings.Contains(p, "imcd") {
			continue // /usr/, /usr/share/doc/…: shared directories
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	for _, pattern := range []string{"/etc/systemd/system/*imcd*", "/etc/systemd/system/*/*imcd*",
		"/var/lib/systemd/deb-systemd-helper-*/*imcd*", "/var/lib/systemd/deb-systemd-helper-*/*/*imcd*"} {
		m, _ := filepath.Glob(pattern)
		left = append(left, m...)
	}
	if len(left) > 0 {
		t.Errorf("after dpkg --purge these are left: %s", strings.Join(left, ", "))
	}
	if _, err := user.Lookup(userName); err == nil {
		t.Error("after dpkg --purge the user imcd is left")
	}
	if _, err := user.LookupGroup(userName); err == nil {
		t.Error("after dpkg --purge the group imcd is left")
	}
	if out, _ := exec.Command("dpkg-statoverride", "--list", confPath).Output(); len(out) > 0 {
		t.Errorf("after dpkg --purge the mode override is left: %s", out)
	}
}

// cmd runs a command and returns its output, failing the test on error.
func cmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderrOf(err))
	}
	return string(out)
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// owners names a file's owner and group (numbers when they have no name;
// "" when st is nil).
func owners(st fs.FileInfo) (owner, group string) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if st == nil || !ok {
		return "", ""
	}
	owner, group = strconv.Itoa(int(sys.Uid)), strconv.Itoa(int(sys.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return owner, group
}
