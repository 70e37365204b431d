package opensips_test

import (
	"bufio"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestStreamReplyIDs: every reliable-mode answer is valid JSON by
// encoding/json's strict reading and carries the id that was sent, for
// string ids with control characters too (issue 19: "\u0001" came back as
// "\x01"), accepted or refused.
func TestStreamReplyIDs(t *testing.T) {
	s, _ := startStream(t, newSink(true), nil)
	c := dial(t, s.LocalAddr())
	dec := json.NewDecoder(bufio.NewReader(c))
	for _, id := range []string{`"\u0001"`, `"\u0000x"`, `"a\"b\\c\n"`, `"\u001f\ud83c\udf89"`, `7`, `-0.5e3`} {
		for _, frame := range []string{
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"x"}}`,
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_OTHER","params":{}}`,
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"ruri":"sip:c@d"}}`,
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","METHOD":"x","params":{}}`,
		} {
			if _, err := io.WriteString(c, frame); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			var reply json.RawMessage
			if err := dec.Decode(&reply); err != nil {
				t.Fatalf("%s: the answer is not JSON: %v", frame, err)
			}
			if err := opensipstest.CheckReplyID(reply, id); err != nil {
				t.Fatalf("%s: %v", frame, err)
			}
		}
	}
}
