package opensips

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

const wire = "../../testdata/opensips-wire"

func readWire(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wire, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitAll returns every frame of r, copied, and the error that ended it.
func splitAll(r io.Reader, max int) ([]string, error) {
	sp := NewFrameSplitter(r, max)
	var out []string
	for {
		f, err := sp.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
		out = append(out, string(f))
	}
}

func TestFrameSplitter(t *testing.T) {
	f := func(in string, max int, want []string, wantErr error) {
		t.Helper()
		got, err := splitAll(strings.NewReader(in), max)
		if !errors.Is(err, wantErr) {
			t.Fatalf("split(%q): err %v, want %v", in, err, wantErr)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Fatalf("split(%q) = %q, want %q", in, got, want)
		}
	}
	f(``, 0, nil, nil)
	f(`   `, 0, nil, nil)
	f(`{}`, 0, []string{`{}`}, nil)
	f(`{}{}`, 0, []string{`{}`, `{}`}, nil)
	f(" {\"a\":1}\r\n\t{\"b\":[1,{\"c\":2}]} ", 0, []string{`{"a":1}`, `{"b":[1,{"c":2}]}`}, nil)
	f(`{"a":"}"}{"b":"{"}`, 0, []string{`{"a":"}"}`, `{"b":"{"}`}, nil)
	f(`{"a":"\"}"}{}`, 0, []string{`{"a":"\"}"}`, `{}`}, nil)
	f(`{"a":"\\"}{}`, 0, []string{`{"a":"\\"}`, `{}`}, nil)
	f(`{"a":"\\\"}\\"}{}`, 0, []string{`{"a":"\\\"}\\"}`, `{}`}, nil)
	f(`{"a":"x\u0022}"}`, 0, []string{`{"a":"x\u0022}"}`}, nil)
	f(`{"a":1}x`, 0, []string{`{"a":1}`}, ErrBadFrame)
	f(`[1]`, 0, nil, ErrBadFrame)
	f(`{"a":`, 0, nil, io.ErrUnexpectedEOF)
	f(`{"a":"}`, 0, nil, io.ErrUnexpectedEOF)
	f(`{"a":"0123456789"}`, 18, []string{`{"a":"0123456789"}`}, nil)
	f(`{"a":"0123456789"}`, 17, nil, ErrFrameTooBig)
	f(`{"a":1}{"a":"0123456789"}`, 10, []string{`{"a":1}`}, ErrFrameTooBig)
	// Raw bytes that are not UTF-8 pass through (05-invalid-utf8-latin1).
	f("{\"b\":\"caf\xe9\"}", 0, []string{"{\"b\":\"caf\xe9\"}"}, nil)
}

// capturedFrames returns the objects of a captured stream as encoding/json
// sees them, as the oracle for the splitter.
func capturedFrames(t *testing.T, stream []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(stream))
	var out []string
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(raw))
	}
}

// chunkReader returns its data in chunks of random sizes.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rnd.IntN(r.max), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestFrameSplitterCapturedStreams(t *testing.T) {
	files := []string{
		"events/stream/notification-mode-13-events.stream.txt",
		"events/stream/reliable-mode-3-requests.stream.txt",
		"events/stream/reliable-mode-no-replies.stream.txt",
		"events/stream/reliable-mode-3-replies-sent-by-listener.stream.txt",
	}
	wantCount := []int{13, 3, 3, 3}
	for i, name := range files {
		stream := readWire(t, name)
		want := capturedFrames(t, stream)
		if len(want) != wantCount[i] {
			t.Fatalf("%s: oracle found %d objects, want %d", name, len(want), wantCount[i])
		}
		check := func(how string, r io.Reader, max int) {
			t.Helper()
			got, err := splitAll(r, max)
			if err != nil {
				t.Fatalf("%s (%s): %v", name, how, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s (%s): %d frames, want %d", name, how, len(got), len(want))
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%s (%s): frame %d differs:\n got %q\nwant %q", name, how, j, got[j], want[j])
				}
			}
		}
		check("whole", bytes.NewReader(stream), 0)
		check("one byte at a time", iotest.OneByteReader(bytes.NewReader(stream)), 0)
		check("half reads", iotest.HalfReader(bytes.NewReader(stream)), 0)
		for seed := range uint64(20) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			check("random chunks", &chunkReader{data: stream, rnd: rnd, max: 1 + rnd.IntN(700)}, 0)
		}
		// One byte under the largest object: that object is refused.
		largest := 0
		for _, w := range want {
			largest = max(largest, len(w))
		}
		check("max = largest", iotest.OneByteReader(bytes.NewReader(stream)), largest)
		if _, err := splitAll(bytes.NewReader(stream), largest-1); !errors.Is(err, ErrFrameTooBig) {
			t.Fatalf("%s with max %d: err %v, want ErrFrameTooBig", name, largest-1, err)
		}
	}
}

// TestFrameSplitterSegmentation cuts the notification stream at every
// possible point into two reads.
func TestFrameSplitterSegmentation(t *testing.T) {
	stream := readWire(t, "events/stream/reliable-mode-3-requests.stream.txt")
	want := capturedFrames(t, stream)
	for cut := 1; cut < len(stream); cut++ {
		r := io.MultiReader(bytes.NewReader(stream[:cut]), bytes.NewReader(stream[cut:]))
		got, err := splitAll(r, 0)
		if err != nil || strings.Join(got, "") != strings.Join(want, "") || len(got) != 3 {
			t.Fatalf("cut at %d: %d frames, err %v", cut, len(got), err)
		}
	}
}
