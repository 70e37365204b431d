package opensips_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// idField is a JSON-RPC request's or reply's id.
var idField = regexp.MustCompile(`"id":[0-9]+`)

// TestSharedMemoryCaptured: SharedMemory asks what the real build was asked
// (testdata/get_statistics_shmem.request.json, taken from the OpenSIPS of
// ../shared/opensips, 4.1.0-dev, on 2026-12-07) and reads its reply:
// real_used_size of total_size.
func TestSharedMemoryCaptured(t *testing.T) {
	req, err := os.ReadFile("testdata/get_statistics_shmem.request.json")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := os.ReadFile("testdata/get_statistics_shmem.response.json")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	asked := make(chan []byte, 1)
	go func() {
		b := make([]byte, 65536)
		n, from, err := pc.ReadFrom(b)
		if err != nil {
			return
		}
		asked <- append([]byte(nil), b[:n]...)
		id := idField.Find(b[:n])
		pc.WriteTo(idField.ReplaceAll(reply, id), from)
	}()
	c := openClient(t, pc.LocalAddr().String(), nil)
	m, err := c.SharedMemory(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := <-asked; !bytes.Equal(idField.ReplaceAll(got, []byte(`"id":1`)), req) {
		t.Fatalf("asked\n%s\nthe capture asks\n%s", got, req)
	}
	if m.Total != 1073741824 || m.Used != 4183384 {
		t.Fatalf("read %+v, the capture says real_used_size 4183384 of total_size 1073741824", m)
	}
}

// TestSharedMemoryFake: against the fake's model, what SharedMemory reads
// grows with the transactions in progress; an OpenSIPS that does not
// answer the statistics is an error, not a reading of zero.
func TestSharedMemoryFake(t *testing.T) {
	fake := startFake(t, opensipstest.Options{ShmSize: 32 << 20, ShmBase: 4 << 20, ShmPerTransaction: 10 << 10, ReplyDelay: time.Hour})
	c := openClient(t, fake.MIAddr(), nil)
	m, err := c.SharedMemory(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m.Total != 32<<20 || m.Used != 4<<20 {
		t.Fatalf("idle: %+v", m)
	}
	uac, err := net.Dial("udp", fake.MIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer uac.Close()
	for i := range 10 {
		fmt.Fprintf(uac, `{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"method":"MESSAGE","ruri":"sip:bob@127.0.0.1","headers":"From: <sip:chat-1@127.0.0.1>;tag=%d\r\nTo: <sip:bob@127.0.0.1>\r\n"},"id":%d}`, i, i)
	}
	waitFor(t, "10 transactions in progress", func() bool { return fake.Outstanding() == 10 })
	if m, err = c.SharedMemory(ctxTimeout(t, 5*time.Second)); err != nil || m.Used != 4<<20+10*10<<10 {
		t.Fatalf("10 transactions in progress: %+v, %v", m, err)
	}

	fake.Handle("get_statistics", func([]byte) ([]byte, *jsonrpc.Error) { return nil, &jsonrpc.Error{Code: 500, Message: "no"} })
	if m, err := c.SharedMemory(ctxTimeout(t, 5*time.Second)); err == nil {
		t.Fatalf("read %+v from an OpenSIPS that refused get_statistics", m)
	}
	fake.Handle("get_statistics", func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`{"shmem:total_size":100}`), nil })
	if m, err := c.SharedMemory(ctxTimeout(t, 5*time.Second)); err == nil {
		t.Fatalf("read %+v from a reply without real_used_size", m)
	}
}
