// Package opensipsproc runs a real OpenSIPS as a child process, for the
// end-to-end tests and the benchmarks that must see what only the real
// one shows (its workers, its MI process, its cost). The configuration is
// generated: a proxy with a registrar (REGISTER saved in memory, other
// requests looked up and relayed), the project's own script fragment
// (scripts/opensips/imcd.cfg or imcd-rabbitmq.cfg) merged in as an
// operator would merge it, and optionally the native imc module on rooms
// named native-*, for side-by-side measurements.
//
// The binary comes from the caller (tests read it from the environment:
// EnvBinary); nothing here downloads or builds OpenSIPS.
package opensipsproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvBinary names the environment variable that gives tests the OpenSIPS
// binary (…/sbin/opensips of an unpacked build); scripts/test.sh sets it
// when it finds one.
const EnvBinary = "IMCD_TEST_OPENSIPS"

// Options describe one OpenSIPS child.
type Options struct {
	// Bin is the opensips binary.
	Bin string
	// ModulesDir holds its modules; by default lib64/opensips/modules
	// (or lib/…) beside the binary's sbin directory.
	ModulesDir string
	// Dir receives the configuration file.
	Dir string
	// Fragment is the project's script fragment to merge in.
	Fragment string
	// Params override or add modparams of the fragment: "module/param" →
	// the OpenSIPS literal (quotes included), e.g.
	// "event_stream/reliable_mode" → "1".
	Params map[string]string
	// UDPWorkers is the number of SIP UDP worker processes (4 when 0).
	UDPWorkers int
	// LoopWorkers, when set, adds a UDP socket of its own (Proc.Loop)
	// served by that many workers (use_workers): imcd's outbound_proxy
	// for proxy_in_order with 1.
	LoopWorkers int
	// SHM is its shared memory in MB (256 when 0).
	SHM int
	// FRTimeout is tm's fr_timeout in seconds (4 when 0).
	FRTimeout int
	// NativeDB, when set, loads the native imc module on that database
	// (mysql://user:pass@host/db) for rooms whose user starts with
	// "native-".
	NativeDB string
	// Log, when set, receives OpenSIPS's log.
	Log io.Writer
}

// Proc is one running OpenSIPS.
type Proc struct {
	Cmd  *exec.Cmd
	Conf string
	// SIP is the UDP (and TCP) SIP listener, MI the mi_datagram socket in
	// OpenSIPS's grammar ("udp:127.0.0.1:PORT"), MIAddr the same address.
	SIP    *net.UDPAddr
	MI     string
	MIAddr *net.UDPAddr
	// Loop is the socket of Options.LoopWorkers, nil without.
	Loop *net.UDPAddr

	log    *tail
	exited chan struct{}
	err    error
}

// ErrNoBinary is what Start says when Options.Bin is empty.
var ErrNoBinary = errors.New("opensipsproc: no OpenSIPS binary given (set " + EnvBinary + " to …/sbin/opensips of an unpacked OpenSIPS build)")

// Start generates the configuration, starts OpenSIPS and returns once its
// MI answers. Ports are picked at random and picked again when OpenSIPS
// cannot bind them.
func Start(ctx context.Context, o Options) (*Proc, error) {
	if o.Bin == "" {
		return nil, ErrNoBinary
	}
	if o.ModulesDir == "" {
		o.ModulesDir = modulesDir(o.Bin)
	}
	if o.UDPWorkers == 0 {
		o.UDPWorkers = 4
	}
	if o.SHM == 0 {
		o.SHM = 256
	}
	if o.FRTimeout == 0 {
		o.FRTimeout = 4
	}
	frag, err := ReadFragment(o.Fragment)
	if err != nil {
		return nil, err
	}
	var last error
	for attempt := 0; attempt < 8; attempt++ {
		// Below Linux's ephemeral ports (32768 up): a port some client's
		// connection holds is found only by OpenSIPS's TCP process,
		// after the MI answers, and OpenSIPS exits then. Four a start:
		// SIP, MI, the loop socket.
		port := 20000 + 4*rand.IntN(3000)
		p, err := start(ctx, o, frag, port)
		if err == nil {
			return p, nil
		}
		last = err
		if !errors.Is(err, errBind) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, last
}

var errBind = errors.New("opensipsproc: a port was taken")

func start(ctx context.Context, o Options, frag *Fragment, port int) (*Proc, error) {
	p := &Proc{
		SIP:    &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
		MIAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1},
		log:    &tail{limit: 1 << 20, copy: o.Log},
		exited: make(chan struct{}),
	}
	p.MI = "udp:" + p.MIAddr.String()
	if o.LoopWorkers > 0 {
		p.Loop = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 2}
	}
	p.Conf = filepath.Join(o.Dir, "opensips.cfg")
	if err := os.WriteFile(p.Conf, []byte(config(o, frag, port)), 0o644); err != nil {
		return nil, err
	}
	p.Cmd = exec.Command(o.Bin, "-F", "-a", "F_MALLOC", "-m", strconv.Itoa(o.SHM), "-M", "16",
		"-P", filepath.Join(o.Dir, "opensips.pid"), "-f", p.Conf)
	p.Cmd.Stdout, p.Cmd.Stderr = p.log, p.log
	// Its own process group, so that Stop reaches every worker; and gone
	// with the harness.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.Bin, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			log := p.log.String()
			if strings.Contains(log, "bind") || strings.Contains(log, "Address already in use") {
				return nil, fmt.Errorf("%w: %d-%d", errBind, port, port+2)
			}
			return nil, fmt.Errorf("opensips exited at start (%v):\n%s", p.err, log)
		default:
		}
		// Ready: the MI answers and every SIP worker has started (the MI
		// process starts before the workers are all up).
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ps, err := p.Processes(cctx)
		cancel()
		if err == nil && countPrefix(ps, "SIP receiver udp") >= o.UDPWorkers+o.LoopWorkers {
			return p, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("opensips MI did not answer at start (%v):\n%s", err, p.log.String())
		}
		time.Sleep(20 * time.Millisecond) // a poll of a starting process, not a timed assertion
	}
}

// modulesDir finds the module directory of an unpacked build.
func modulesDir(bin string) string {
	root := filepath.Dir(filepath.Dir(bin))
	for _, d := range []string{"lib64/opensips/modules", "lib/opensips/modules", "lib/x86_64-linux-gnu/opensips/modules"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err == nil && fi.IsDir() {
			return filepath.Join(root, d)
		}
	}
	return filepath.Join(root, "lib64/opensips/modules")
}

// Log returns what OpenSIPS logged (the last MB of it).
func (p *Proc) Log() string { return p.log.String() }

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Pid is the main (attendant) process.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Stop asks OpenSIPS to stop (SIGTERM) and kills its process group when
// it has not within limit.
func (p *Proc) Stop(limit time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(limit):
		p.Kill()
		return fmt.Errorf("opensips did not stop within %v: killed", limit)
	}
}

// Kill kills the whole process group at once and waits for the main
// process.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// Call runs one MI command over mi_datagram and returns its result, or
// the error object as an error.
func (p *Proc) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	conn, err := net.DialUDP("udp4", nil, p.MIAddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": 1}
	if params != nil {
		req["params"] = params
	}
	b, _ := json.Marshal(req)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := conn.Write(b); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<16)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(buf[:n], &resp); err != nil {
		return nil, fmt.Errorf("MI %s: %w: %q", method, err, buf[:n])
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("MI %s: %d %s", method, resp.Error.Code, resp.Error.Message)
	}
	return resp.Result, nil
}

// Process is one OpenSIPS process as MI ps lists it.
type Process struct {
	PID  int    `json:"PID"`
	Type string `json:"Type"`
}

// Processes lists OpenSIPS's processes and their roles ("SIP receiver
// udp:…", "MI Datagram", "event_stream Sender", "timer", …).
func (p *Proc) Processes(ctx context.Context) ([]Process, error) {
	res, err := p.Call(ctx, "core:ps", nil)
	if err != nil {
		return nil, err
	}
	var ps struct {
		Processes []Process `json:"Processes"`
	}
	if err := json.Unmarshal(res, &ps); err != nil {
		return nil, err
	}
	return ps.Processes, nil
}

func countPrefix(ps []Process, prefix string) int {
	n := 0
	for _, p := range ps {
		if strings.HasPrefix(p.Type, prefix) {
			n++
		}
	}
	return n
}

// CPUTime returns the CPU time (user and system) process pid and all its
// threads, ended ones included, have used so far: /proc/PID/stat's utime
// and stime, in clock ticks of 10 ms (schedstat would be finer, but counts
// one thread only: a Go process has many).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q %q", pid, f[11], f[12])
	}
	const tick = 10 * time.Millisecond // sysconf(_SC_CLK_TCK) = 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

// tail keeps the last limit bytes written, and copies them on.
type tail struct {
	mu    sync.Mutex
	limit int
	b     []byte
	copy  io.Writer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.limit {
		t.b = append(t.b[:0], t.b[len(t.b)-t.limit/2:]...)
	}
	if t.copy != nil {
		_, _ = t.copy.Write(p)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
