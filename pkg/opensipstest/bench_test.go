package opensipstest

import (
	"testing"
	"time"
)

// BenchmarkUACDlg measures one t_uac_dlg round trip through the fake's
// receive buffer, MI process and transaction timer.
func BenchmarkUACDlg(b *testing.B) {
	s, err := Start(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newClient(b, s)
	req := []byte(`{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"method":"MESSAGE","ruri":"sip:ok@127.0.0.1","headers":"From: <sip:chat-1@127.0.0.1>;tag=t\r\nTo: <sip:ok@127.0.0.1>\r\nContent-Type: text/plain\r\n","body":"hello"},"id":1}`)
	buf := make([]byte, 65536)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.c.Write(req); err != nil {
			b.Fatal(err)
		}
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMIRate sends bursts of 100 requests into a fake limited to
// 2,000 requests/s and reports the rate it served them at, to show that the
// pacing holds its rate (served/s close to 2000) instead of drifting below
// it with timer lateness.
func BenchmarkMIRate(b *testing.B) {
	const rate, burst = 2000, 100
	s, err := Start(Options{MIRate: rate})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newClient(b, s)
	ctx := waitCtx(b)
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		for range burst {
			if _, err := c.c.Write(whichRequest(n%90 + 10)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if _, err := s.WaitMIStats(ctx, func(st MIStats) bool { return st.Served == n }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "served/s")
}
