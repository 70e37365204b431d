package opensips

import (
	"bytes"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
)

func BenchmarkAppendUACRequest(b *testing.B) {
	n := &imc.Notice{From: imc.URI{User: "chat-1", Host: "example.com"}, To: imc.URI{User: "bob", Host: "example.com"},
		Body: "<alice@example.com>: hello everybody in chat-1", ContentType: "text/plain", InReplyTo: "51699e06c1dedd92@lab"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := range b.N {
		var err error
		buf, _, err = appendUAC(buf[:0], uint64(i), n, "1a2b3c4d-", uint64(i), true, Route{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkFrameSplitter(b *testing.B) {
	stream := readWire(b, "events/stream/notification-mode-13-events.stream.txt")
	r := bytes.NewReader(stream)
	sp := NewFrameSplitter(r, 0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(stream)
		sp.Reset(r)
		n := 0
		for {
			if _, err := sp.Next(); err != nil {
				break
			}
			n++
		}
		if n != 13 {
			b.Fatalf("%d frames", n)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := readWire(b, "events/datagram/02-plain.json")
	h := frameHandler{eventName: DefaultEventName}
	var ev Event
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for range b.N {
		if _, _, _, err := h.decode(data, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
