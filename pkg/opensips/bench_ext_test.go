package opensips_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// BenchmarkDeliverRoundTrip measures t_uac_dlg requests answered per second
// through the fake OpenSIPS over loopback UDP (fake and client share the
// machine, so this is a floor).
func BenchmarkDeliverRoundTrip(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fake, err := opensipstest.Start(opensipstest.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	c := &opensips.MIClient{Addr: fake.MISocket(), Logger: quiet, Window: 256}
	if err := c.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n := newNotice("bob", "<alice@127.0.0.1>: hello everybody in chat-1")
	var ok atomic.Int64
	done := func(o opensips.Outcome) {
		if o.Delivered() {
			ok.Add(1)
		}
	}
	b.ReportAllocs()
	start := time.Now()
	for range b.N {
		for {
			err := c.Deliver(n, done)
			if err == nil {
				break
			}
			if !errors.Is(err, opensips.ErrQueueFull) {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if int(ok.Load()) != b.N {
		b.Fatalf("%d of %d delivered", ok.Load(), b.N)
	}
}
