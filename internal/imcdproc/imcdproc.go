// Package imcdproc runs the real imcd binary as a child process, for the
// end-to-end tests (cmd/imcd) and imcbench. It writes a configuration file
// with every socket on 127.0.0.1 port 0, starts imcd, learns the addresses
// imcd actually bound from its "imcd started" log record (so no port is
// ever guessed), and waits until /readyz says ready.
package imcdproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultReadyTimeout bounds the wait for a fresh imcd to be ready.
const DefaultReadyTimeout = 30 * time.Second

// Options describe one imcd child.
type Options struct {
	// Bin is the imcd binary.
	Bin string
	// Dir is the data_dir; the config file is written there too.
	Dir string
	// Lines are "key = value" configuration lines. They come after the
	// harness's own (loopback port-0 sockets, FIFO in Dir, JSON log at
	// info, no canary), so they override them; write `mi_http = ""` to
	// turn one off.
	Lines []string
	// Env is added to the child's environment.
	Env []string
	// Log, when set, receives a copy of imcd's log.
	Log io.Writer
	// ReadyTimeout bounds the wait for readiness; DefaultReadyTimeout
	// when 0.
	ReadyTimeout time.Duration
	// LogLimit keeps only the last LogLimit bytes of the log in memory
	// (0: all of it), for long benchmark runs.
	LogLimit int
}

// Addrs are the addresses imcd reported binding, as its "imcd started"
// record gives them ("" when off).
type Addrs struct {
	Events     string `json:"events"`      // "tcp:127.0.0.1:40123" or "udp:…"
	MIDatagram string `json:"mi_datagram"` // "udp:127.0.0.1:40124"
	MIHTTP     string `json:"mi_http"`     // "127.0.0.1:40125"
	MIFIFO     string `json:"mi_fifo"`     // a path
	Metrics    string `json:"metrics"`     // "127.0.0.1:40126"
}

// Proc is one running imcd.
type Proc struct {
	Cmd   *exec.Cmd
	Conf  string // the config file written
	Dir   string
	Addrs Addrs
	// Log holds what imcd wrote to stderr and stdout (JSON records).
	Log *LogBuffer

	started  chan Addrs
	exited   chan struct{}
	exitCode int
	exitErr  error
}

// baseLines are the harness's configuration: every socket on loopback port
// 0, so the kernel picks free ones and imcd reports them.
func baseLines(dir string) []string {
	return []string{
		"data_dir = " + dir,
		"event_listen = tcp:127.0.0.1:0",
		"mi_datagram = udp:127.0.0.1:0",
		"mi_http = 127.0.0.1:0",
		"mi_fifo = " + filepath.Join(dir, "imcd_fifo"),
		"metrics_listen = 127.0.0.1:0",
		"log_level = info",
		"log_format = json",
		// The canary's probes would be events and t_uac_dlg requests the
		// tests do not count on: a test of the canary turns it on.
		"canary_interval = 0",
	}
}

// Start writes the config file, starts imcd and returns once it is ready:
// it reported its addresses and /readyz answered 200.
func Start(o Options) (*Proc, error) {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	p := &Proc{Dir: o.Dir, Log: &LogBuffer{limit: o.LogLimit}, started: make(chan Addrs, 1), exited: make(chan struct{})}
	p.Conf = filepath.Join(o.Dir, "imcd.conf")
	lines := append(baseLines(o.Dir), o.Lines...)
	if err := os.WriteFile(p.Conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	p.Cmd = exec.Command(o.Bin, "-config", p.Conf)
	p.Cmd.Env = append(os.Environ(), o.Env...)
	// imcd gets SIGTERM if the harness dies, so no imcd outlives a run.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := p.Cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p.Cmd.Stdout = p.Log
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.Bin, err)
	}
	copied := make(chan struct{})
	go p.readLog(out, o.Log, copied)
	go func() {
		<-copied // Wait closes the pipe: read it all first
		p.exitErr = p.Cmd.Wait()
		p.exitCode = p.Cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	if err := p.waitReady(o.ReadyTimeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// readLog copies imcd's stderr into Log (and w) line by line, and picks the
// bound addresses out of the "imcd started" record.
func (p *Proc) readLog(r io.Reader, w io.Writer, done chan<- struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	sent := false
	for sc.Scan() {
		line := append(sc.Bytes(), '\n') // the scanner dropped this very byte
		p.Log.Write(line)
		if w != nil {
			w.Write(line)
		}
		if sent {
			continue
		}
		var rec struct {
			Msg string `json:"msg"`
			Addrs
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "imcd started" {
			p.started <- rec.Addrs
			sent = true
		}
	}
}

func (p *Proc) waitReady(limit time.Duration) error {
	deadline := time.After(limit)
	select {
	case p.Addrs = <-p.started:
	case <-p.exited:
		return fmt.Errorf("imcd exited with %d before it started (%v)\n%s", p.exitCode, p.exitErr, p.Log.String())
	case <-deadline:
		return fmt.Errorf("imcd did not start within %v\n%s", limit, p.Log.String())
	}
	for {
		if p.Addrs.Metrics == "" {
			return nil // no /readyz to ask: "imcd started" is all there is
		}
		if code, _ := p.Get("/readyz"); code == http.StatusOK {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("imcd exited with %d before it was ready (%v)\n%s", p.exitCode, p.exitErr, p.Log.String())
		case <-deadline:
			code, body := p.Get("/readyz")
			return fmt.Errorf("imcd not ready after %v: %d %s\n%s", limit, code, body, p.Log.String())
		case <-time.After(2 * time.Millisecond): // fast, so that an early "ready" is caught
		}
	}
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// ExitCode is the exit status, valid once Exited is closed.
func (p *Proc) ExitCode() int { return p.exitCode }

// Pid returns the child's process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// ErrStuck: imcd did not exit within the time Stop gave it after SIGTERM
// (it was killed).
var ErrStuck = errors.New("imcdproc: imcd did not stop after SIGTERM")

// Stop sends SIGTERM and waits up to limit for the exit, then kills it
// (ErrStuck). It returns the exit code.
func (p *Proc) Stop(limit time.Duration) (int, error) {
	select {
	case <-p.exited:
		return p.exitCode, nil
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.exitCode, nil
	case <-time.After(limit):
		p.Kill()
		return p.exitCode, ErrStuck
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// Get fetches path from the metrics server and returns the status and
// body (0 and the error text when the request failed).
func (p *Proc) Get(path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Addrs.Metrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics returns the /metrics text.
func (p *Proc) Metrics() string {
	_, body := p.Get("/metrics")
	return body
}

// HostPort returns an OpenSIPS-style socket without its scheme:
// "udp:127.0.0.1:5" gives "127.0.0.1:5".
func HostPort(socket string) string {
	_, rest, _ := strings.Cut(socket, ":")
	return rest
}

// LogBuffer keeps what imcd logs, safe for concurrent use; with a limit
// it keeps only the tail.
type LogBuffer struct {
	mu    sync.Mutex
	limit int
	b     []byte
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if l.limit > 0 && len(l.b) > l.limit {
		l.b = append(l.b[:0], l.b[len(l.b)-l.limit/2:]...)
	}
	return len(p), nil
}

// String returns the log kept so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
