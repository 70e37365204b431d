package opensips

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// FuzzFrameSplitter checks that the splitter never panics, never returns an
// oversized frame, and finds the same frames whatever the segmentation.
// Seeds: testdata/fuzz/FuzzFrameSplitter (the captured streams) and below.
func FuzzFrameSplitter(f *testing.F) {
	f.Add([]byte(`{"a":"}"}{"b":"\\\""}  {}`), 64)
	f.Add([]byte(`{"a":[{"b":"{"}]}x`), 0)
	f.Add([]byte("{\"b\":\"caf\xe9\"}"), 8)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 0 || max > 1<<16 {
			max = 0
		}
		whole, errWhole := splitAll(bytes.NewReader(data), max)
		bytewise, errBytewise := splitAll(iotest.OneByteReader(bytes.NewReader(data)), max)
		if len(whole) != len(bytewise) || !errors.Is(errBytewise, errWhole) && errWhole != errBytewise {
			t.Fatalf("whole: %d frames (%v); byte by byte: %d frames (%v)", len(whole), errWhole, len(bytewise), errBytewise)
		}
		limit := max
		if limit == 0 {
			limit = DefaultMaxFrame
		}
		rest := data
		for i, fr := range whole {
			if fr != bytewise[i] {
				t.Fatalf("frame %d differs", i)
			}
			if len(fr) > limit || fr[0] != '{' || (fr[len(fr)-1] != '}' && fr[len(fr)-1] != ']') {
				t.Fatalf("bad frame %q", fr)
			}
			// Frames are consecutive pieces of the input, separated by
			// whitespace only.
			rest = bytes.TrimLeft(rest, " \t\r\n")
			if !bytes.HasPrefix(rest, []byte(fr)) {
				t.Fatalf("frame %d %q is not the next piece of the input", i, fr)
			}
			rest = rest[len(fr):]
		}
		if errWhole == nil && len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
			t.Fatalf("input left over without an error: %q", rest)
		}
		if errWhole != nil && !errors.Is(errWhole, ErrBadFrame) && !errors.Is(errWhole, ErrFrameTooBig) && errWhole != io.ErrUnexpectedEOF {
			t.Fatalf("unexpected error %v", errWhole)
		}
	})
}

// FuzzDecodeEvent runs arbitrary datagrams through the full decode path
// (envelope, event name, params). Seeds: testdata/fuzz/FuzzDecodeEvent (the
// captured datagrams) and below.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":1,"src_port":"5060"}}`))
	f.Add([]byte(`{"id":1,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","to":"sip:c@d","body":"\u0000\ud83c\udf89"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"a","from":"b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := frameHandler{eventName: DefaultEventName}
		var ev Event
		id, result, _, err := h.decode(data, &ev)
		if (err == nil) != (result == ResultOK) {
			t.Fatalf("result %q with err %v", result, err)
		}
		if id != nil && !utf8.Valid(id) {
			t.Fatalf("id %q", id)
		}
		if err != nil {
			return
		}
		if ev.Req.From == "" || ev.Req.RURI == "" || ev.SrcPort < 0 || ev.SrcPort > 65535 {
			t.Fatalf("accepted event %+v", ev)
		}
		// The event survives the parser's next use.
		saved := ev
		var other Event
		h.decode([]byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:zzzzzzzzzzzzzzzz@z","ruri":"sip:y@y","body":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}}`), &other)
		if ev != saved {
			t.Fatal("event changed after the next decode")
		}
	})
}
