package main

import (
	"strconv"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// BenchmarkHotPath is imcd's user-space work for one chat line without any
// I/O: decode the event (jsonrpc.Decode + opensips.DecodeEvent), Prepare
// and Handle it (imc), encode every t_uac_dlg (opensips.AppendUACRequest)
// and decode every 200 OK reply (jsonrpc.Decode), the way the stream
// reader, a shard and the MI client do it. ns/delivery is what a delivery
// costs before the kernel and the Go scheduler add theirs; compare it with
// imcbench's "imcd CPU s per 1M deliveries".
func BenchmarkHotPath(b *testing.B) {
	for _, size := range []int{2, 10, 100, 1000} {
		b.Run("members="+strconv.Itoa(size), func(b *testing.B) { benchHotPath(b, size) })
	}
}

func benchHotPath(b *testing.B, size int) {
	e := imc.NewEngine(imc.DefaultConfig())
	rs := imc.NewRooms()
	room := imc.URI{User: "f-0", Host: benchDomain}
	members := make([]imc.Member, size)
	for j := range members {
		members[j] = imc.Member{URI: imc.URI{User: "u0-" + strconv.Itoa(j), Host: benchDomain}}
	}
	members[0].Flags = imc.MemberOwner
	rs.Put(imc.NewRoom(room, 0, members))

	event := appendEvent(nil, "u0-1", "f-0", 42, 1, "")
	var evParser, replyParser fastjson.Parser
	var out []byte
	reply := appendOK(nil, 1234567)
	b.ReportAllocs()
	deliveries := 0
	for b.Loop() {
		m, err := jsonrpc.Decode(&evParser, event)
		if err != nil {
			b.Fatal(err)
		}
		var ev opensips.Event
		if err := opensips.DecodeEvent(m.Params, &ev); err != nil {
			b.Fatal(err)
		}
		in, err := e.Prepare(ev.Req)
		if err != nil {
			b.Fatal(err)
		}
		res := e.Handle(rs, in)
		if len(res.Notices) != size-1 {
			b.Fatalf("%d notices", len(res.Notices))
		}
		for i := range res.Notices {
			out, err = opensips.AppendUACRequest(out[:0], uint64(i), &res.Notices[i], "1a2b3c4d-1f", "")
			if err != nil {
				b.Fatal(err)
			}
			r, err := jsonrpc.Decode(&replyParser, reply)
			if err != nil || r.Result.GetStringBytes("Status") == nil {
				b.Fatal(err)
			}
		}
		deliveries += len(res.Notices)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")
}
