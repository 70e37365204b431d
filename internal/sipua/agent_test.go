package sipua

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestRetransmissionIsOneMessage: a MESSAGE received again with the same
// Call-ID and CSeq (the sender did not see the answer in time) is answered
// again with the same status, and is recorded and counted once; another
// CSeq of the same Call-ID is another request.
func TestRetransmissionIsOneMessage(t *testing.T) {
	codes := []int{480, 200}
	a := &Agent{Record: true, Answer: func(string) int {
		c := codes[0]
		codes = codes[1:]
		return c
	}}
	if err := a.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	conn, err := net.DialUDP("udp4", nil, a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := func(cseq string) []byte {
		return []byte("MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-1\r\n" +
			"From: <sip:chat-1@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1@x\r\nCSeq: " + cseq +
			" MESSAGE\r\nContent-Length: 5\r\n\r\nhello")
	}
	buf := make([]byte, 2048)
	for i, c := range []struct {
		cseq string
		want string
	}{{"10", "SIP/2.0 480 "}, {"10", "SIP/2.0 480 "}, {"11", "SIP/2.0 200 "}, {"10", "SIP/2.0 480 "}} {
		if _, err := conn.Write(msg(c.cseq)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !bytes.HasPrefix(buf[:n], []byte(c.want)) {
			t.Errorf("request %d (CSeq %s): answered %q, want %q", i, c.cseq, buf[:n], c.want)
		}
	}
	ms := a.Messages()
	if len(ms) != 2 || ms[0].Code != 480 || ms[1].Code != 200 {
		t.Errorf("recorded %+v, want the two requests, answered 480 and 200", ms)
	}
	if a.Received() != 2 || a.Retransmits() != 2 {
		t.Errorf("received %d, retransmits %d; want 2 and 2", a.Received(), a.Retransmits())
	}
}
