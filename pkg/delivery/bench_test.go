package delivery_test

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

// leanSender answers every request at once with 200 OK and allocates
// nothing.
type leanSender struct{}

func (leanSender) Send(_ *imc.Notice, tag uint64, done delivery.Completion) error {
	done(tag, ok200, false)
	return nil
}

func (leanSender) Flush() {}

func (leanSender) Poll() int { return 0 }

func (leanSender) InOrder(imc.URI) bool { return true }

// BenchmarkSubmitDispatch measures one delivery through the scheduler:
// Submit (one batch per 10-member room line), pick, write, outcome, Done.
// ns/op and allocs/op are per delivery.
func BenchmarkSubmitDispatch(b *testing.B) {
	var done atomic.Int64
	s := open(b, &delivery.Scheduler{
		Endpoints: []delivery.Endpoint{{Sender: leanSender{}}},
		RateMax:   1e9, RateMin: 1e9, Burst: 4096, Outstanding: 1 << 20,
	})
	rooms := make([][]imc.Notice, 16)
	for i := range rooms {
		rooms[i] = notices("chat-"+string(rune('a'+i)), users("m", 10), "<alice@127.0.0.1>: hello everybody")
	}
	count := func(imc.Notice, delivery.Result) { done.Add(1) }
	// Warm the slabs and maps.
	for i := range rooms {
		for s.Submit(delivery.Batch{Notices: rooms[i], Done: count}) != nil {
			runtime.Gosched()
		}
	}
	for done.Load() < int64(10*len(rooms)) {
		runtime.Gosched()
	}
	done.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	batches := (b.N + 9) / 10
	for i := range batches {
		// Stay below saturation: a refused Submit is not what is measured.
		for int64(i*10)-done.Load() > 2000 {
			runtime.Gosched()
		}
		if err := s.Submit(delivery.Batch{Notices: rooms[i%len(rooms)], Done: count}); err != nil {
			b.Fatal(err)
		}
	}
	for done.Load() < int64(batches*10) {
		runtime.Gosched()
	}
}
