// Command imcdemo shows what imcd does without an OpenSIPS: it starts imcd
// (in-process, on a throw-away SQLite database) beside the fake OpenSIPS of
// the tests, lets three scripted users hold a short conversation, and prints
// every MESSAGE they send and every MESSAGE imcd makes OpenSIPS deliver.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/daemon"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// line is one scripted MESSAGE: who sends what to which URI, and how many
// MESSAGEs imcd sends for it.
type line struct {
	from, to, body string
	replies        int
}

const (
	alice   = "sip:alice@example.com"
	bob     = "sip:bob@example.com"
	carol   = "sip:carol@example.com"
	manager = "sip:chat-manager@example.com"
	room    = "sip:chat-1@example.com"
)

var script = []line{
	{alice, manager, "#create chat-1", 1},
	{bob, room, "#join", 2},
	{alice, room, "hello bob, welcome to chat-1", 1},
	{bob, room, "hi alice! \u00e7a va? \u2713", 1},
	{alice, room, "#invite carol", 2},
	{carol, room, "#accept", 4},
	{carol, room, "#list", 1},
	{bob, room, "#destroy", 1},
	{carol, room, "##hashtags start with a #", 2},
	{bob, room, "#exit", 3},
	{alice, room, "#destroy", 2},
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "imcdemo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	fake, err := opensipstest.Start(opensipstest.Options{})
	if err != nil {
		return err
	}
	defer fake.Close()
	dir, err := os.MkdirTemp("", "imcdemo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cfg := config.Default()
	cfg.DataDir = dir
	cfg.OpenSIPSMI = fake.MISocket()
	cfg.EventListen = "tcp:127.0.0.1:0"
	cfg.MIDatagram, cfg.MIHTTP, cfg.MIFIFO, cfg.MetricsListen = "", "", "", ""
	d := daemon.New(cfg, slog.New(slog.DiscardHandler))
	if err := d.Open(context.Background()); err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := d.Addrs().Events
	if err := fake.WaitSubscribed(ctx, cfg.EventName, events); err != nil {
		return fmt.Errorf("imcd did not subscribe: %w", err)
	}

	fmt.Fprintf(out, "imcd is running against a fake OpenSIPS (events over %s).\n", events)
	fmt.Fprintf(out, "Each MESSAGE a user sends becomes an E_IMC_MESSAGE event; each reply is a t_uac_dlg request.\n\n")
	for _, l := range script {
		fake.Reset()
		fmt.Fprintf(out, "%s -> %s: %s\n", user(l.from), l.to, show(l.body))
		if _, err := fake.Raise(opensipstest.NewEvent(l.from, l.to, l.body)); err != nil {
			return err
		}
		if err := waitReplies(ctx, fake, l.replies); err != nil {
			return fmt.Errorf("%s: %w", l.body, err)
		}
		ds := fake.Deliveries()
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].To < ds[j].To })
		for _, dl := range ds {
			fmt.Fprintf(out, "    %s => %s: %s\n", dl.From, user(dl.To), show(dl.Body))
		}
		fmt.Fprintln(out)
	}
	return nil
}

// waitReplies waits until imcd has made the fake OpenSIPS deliver n
// MESSAGEs: on a busy machine they may take a while.
func waitReplies(ctx context.Context, fake *opensipstest.Server, n int) error {
	for len(fake.Deliveries()) < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d replies: %w", len(fake.Deliveries()), n, ctx.Err())
		case <-time.After(5 * time.Millisecond): // a poll, not a guess at how long replies take
		}
	}
	return nil
}

func user(uri string) string {
	return strings.TrimSuffix(strings.TrimPrefix(uri, "sip:"), "@example.com")
}

// show keeps a multi-line body on one indented block.
func show(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n        ")
}
