package main

// A RabbitMQ node of the test's own, for the tests that stop the broker:
// the machine's broker is shared with other tests and must not be touched.
// The node runs from a temporary directory with its own node name, data,
// logs, configuration and (no) plugins; Erlang picks its distribution port
// (-sname before RabbitMQ's prelaunch sets one) and the AMQP listener takes
// port 0, so nothing guesses a free port. The listener's port changes at
// every start_app, so clients reach the node through a TCP forwarder on a
// port of its own that follows it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
)

// rabbitBin finds a program of RabbitMQ's: the Debian package's own
// scripts first (the ones in /usr/sbin switch to the rabbitmq user, who
// cannot write the test's directory), then PATH.
func rabbitBin(name string) string {
	if p := filepath.Join("/usr/lib/rabbitmq/bin", name); fileExists(p) {
		return p
	}
	p, _ := exec.LookPath(name)
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// privateBroker is one RabbitMQ node of the test's own.
type privateBroker struct {
	t     *testing.T
	dir   string
	node  string
	env   []string
	cmd   *exec.Cmd
	ctl   string
	proxy *forwarder
	// exited is closed once the server process has exited.
	exited chan struct{}
}

// startPrivateBroker starts a node and waits until it takes connections;
// without rabbitmq-server the test is skipped, or fails
// (testbroker.Unavailable). The node is stopped when the test ends.
func startPrivateBroker(t *testing.T) *privateBroker {
	t.Helper()
	server, ctl := rabbitBin("rabbitmq-server"), rabbitBin("rabbitmqctl")
	if server == "" || ctl == "" {
		testbroker.Unavailable(t, "rabbitmq-server is not installed (scripts/test-services.sh installs it)")
	}
	var b [4]byte
	rand.Read(b[:])
	// Short paths: Erlang and the node name live in them.
	dir, err := os.MkdirTemp("", "imcd-rmq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pb := &privateBroker{t: t, dir: dir, node: "imcdtest" + hex.EncodeToString(b[:]) + "@localhost", ctl: ctl}
	files := map[string]string{
		"rabbitmq.conf":   "listeners.tcp.1 = 127.0.0.1:0\nloopback_users = none\n",
		"enabled_plugins": "[].\n",
		"env.conf":        "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pb.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie, shared by the node and rabbitmqctl
		"RABBITMQ_NODENAME="+pb.node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-sname "+pb.node+" -kernel inet_dist_use_interface {127,0,0,1}",
	)
	log, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		t.Fatal(err)
	}
	pb.cmd = exec.Command(server)
	pb.cmd.Env, pb.cmd.Dir, pb.cmd.Stdout, pb.cmd.Stderr = pb.env, dir, log, log
	// The server script stops the node on SIGTERM, also when the test
	// binary dies.
	pb.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := pb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pb.exited = make(chan struct{})
	go func() { pb.cmd.Wait(); close(pb.exited) }()
	t.Cleanup(pb.stop)
	if err := pb.awaitFirstStartup(3 * time.Minute); err != nil {
		t.Fatalf("private RabbitMQ node did not start: %v\n%s", err, pb.logs())
	}
	if pb.proxy, err = newForwarder(pb.amqpAddr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pb.proxy.close)
	return pb
}

// awaitFirstStartup waits, at most limit, until the new node runs
// RabbitMQ. await_startup waits for a node that is booting, but fails at
// once ("nodedown", exit 69) while the node's Erlang VM has not even
// registered its name yet, which on a loaded machine can take longer than
// rabbitmqctl's own start: it is asked again until the node answers, as
// long as the server runs.
func (pb *privateBroker) awaitFirstStartup(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not running within %v", limit)
		}
		_, err := pb.rabbitmqctl(left, "await_startup", "--timeout", fmt.Sprint(int(left.Seconds())+1))
		if err == nil {
			return nil
		}
		select {
		case <-pb.exited:
			return fmt.Errorf("rabbitmq-server exited: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// URL is the node's AMQP URL, through the forwarder.
func (pb *privateBroker) URL() string { return "amqp://guest:guest@" + pb.proxy.addr() + "/" }

// rabbitmqctl runs rabbitmqctl against the node.
func (pb *privateBroker) rabbitmqctl(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, pb.ctl, append([]string{"-n", pb.node, "-q"}, args...)...)
	cmd.Env, cmd.Dir = pb.env, pb.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var portRE = regexp.MustCompile(`port => (\d+)`)

// amqpAddr asks the node which port its AMQP listener took.
func (pb *privateBroker) amqpAddr() string {
	pb.t.Helper()
	out, err := pb.rabbitmqctl(30*time.Second, "eval", "ranch:info().")
	if err != nil {
		pb.t.Fatal(err)
	}
	m := portRE.FindStringSubmatch(out)
	if m == nil {
		pb.t.Fatalf("no AMQP listener in %s", out)
	}
	return "127.0.0.1:" + m[1]
}

// stopApp stops the RabbitMQ application (the node stays up), as a broker
// restart does: every connection is closed; the quorum queues keep their
// messages on disk.
func (pb *privateBroker) stopApp() {
	pb.t.Helper()
	if _, err := pb.rabbitmqctl(60*time.Second, "stop_app"); err != nil {
		pb.t.Fatal(err)
	}
}

// startApp starts it again and points the forwarder at its new port.
func (pb *privateBroker) startApp() {
	pb.t.Helper()
	if _, err := pb.rabbitmqctl(60*time.Second, "start_app"); err != nil {
		pb.t.Fatal(err)
	}
	if _, err := pb.rabbitmqctl(60*time.Second, "await_startup"); err != nil {
		pb.t.Fatal(err)
	}
	pb.proxy.setTarget(pb.amqpAddr())
}

func (pb *privateBroker) stop() {
	if pb.cmd.Process == nil {
		return
	}
	_ = pb.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pb.exited:
	case <-time.After(60 * time.Second):
		pb.t.Errorf("private RabbitMQ node did not stop within 60s")
		pb.rabbitmqctl(30*time.Second, "stop")
	}
}

func (pb *privateBroker) logs() string {
	b, _ := os.ReadFile(filepath.Join(pb.dir, "server.out"))
	return string(b)
}

// forwarder is a TCP forwarder on 127.0.0.1:0 to a target that may change.
type forwarder struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
}

func newForwarder(target string) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, target: target}
	go f.accept()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) setTarget(t string) {
	f.mu.Lock()
	f.target = t
	f.mu.Unlock()
}

// accept forwards each connection until either side closes it; closing
// the listener ends it (connections then end with their peers).
func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		target := f.target
		f.mu.Unlock()
		go func() {
			defer c.Close()
			s, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return // a broker that is down: the client sees the connection close
			}
			defer s.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(s, c); done <- struct{}{} }()
			go func() { io.Copy(c, s); done <- struct{}{} }()
			<-done
		}()
	}
}

func (f *forwarder) close() {
	f.ln.Close()
}
