package opensips

import (
	"bytes"
	"errors"
	"io"
)

// DefaultMaxFrame is the default cap on one event_stream object: far above
// the 65,507 bytes an event can reach over datagrams.
const DefaultMaxFrame = 256 << 10

// FrameSplitter cuts a byte stream into top-level JSON objects. OpenSIPS's
// event_stream writes objects back to back with no delimiter, and TCP may cut
// them anywhere, so the splitter tracks strings, escapes and brace depth to
// find where each object ends. Whitespace between objects is skipped. It does
// not validate JSON: a frame it returns still has to be parsed.
//
// A FrameSplitter is not safe for concurrent use; each connection has its own.
type FrameSplitter struct {
	r   io.Reader
	max int
	buf []byte

	start, end int  // buf[start:end] holds bytes not yet returned
	pos        int  // next byte of the open object to scan
	open       bool // an object starts at buf[start]
	inStr      bool
	depth      int
	err        error // sticky read error
}

// NewFrameSplitter returns a splitter reading from r that refuses objects
// longer than maxFrame bytes (DefaultMaxFrame when maxFrame <= 0).
func NewFrameSplitter(r io.Reader, maxFrame int) *FrameSplitter {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameSplitter{r: r, max: maxFrame, buf: make([]byte, min(maxFrame, 32<<10))}
}

// InFrame reports whether an object has begun and not ended: what Next
// is reading when it calls the reader.
func (s *FrameSplitter) InFrame() bool { return s.open }

// Reset makes the splitter read a new stream from r, keeping its buffer.
func (s *FrameSplitter) Reset(r io.Reader) {
	*s = FrameSplitter{r: r, max: s.max, buf: s.buf}
}

// Next returns the next object. The slice points into the splitter's buffer
// and is valid until the next call. At the end of the stream it returns
// io.EOF, or io.ErrUnexpectedEOF when the stream ended inside an object.
// ErrFrameTooBig and ErrBadFrame mean the stream cannot be resynchronised:
// the caller closes the connection.
func (s *FrameSplitter) Next() ([]byte, error) {
	for {
		frame, err := s.scan()
		if frame != nil || err != nil {
			return frame, err
		}
		if s.err != nil {
			if s.open && errors.Is(s.err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, s.err
		}
		if s.open && s.end-s.start >= s.max {
			return nil, ErrFrameTooBig
		}
		s.fill()
	}
}

// scan looks for the end of the object at buf[start:]; it returns nil, nil
// when more bytes are needed.
func (s *FrameSplitter) scan() ([]byte, error) {
	b := s.buf
	if !s.open {
		for s.start < s.end && isSpace(b[s.start]) {
			s.start++
		}
		if s.start == s.end {
			s.start, s.end = 0, 0
			return nil, nil
		}
		if b[s.start] != '{' {
			return nil, ErrBadFrame
		}
		s.open, s.depth, s.inStr, s.pos = true, 0, false, s.start
	}
	i := s.pos
	for i < s.end {
		if s.inStr {
			j := bytes.IndexByte(b[i:s.end], '"')
			if j < 0 {
				i = s.end
				break
			}
			q := i + j
			// The quote ends the string unless an odd run of backslashes
			// precedes it. The run cannot cross the opening quote, which is
			// still in the buffer.
			k := 0
			for b[q-1-k] == '\\' {
				k++
			}
			if k%2 == 0 {
				s.inStr = false
			}
			i = q + 1
			continue
		}
		switch b[i] {
		case '"':
			s.inStr = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth == 0 {
				frame := b[s.start : i+1]
				s.start, s.open = i+1, false
				if len(frame) > s.max {
					return nil, ErrFrameTooBig
				}
				return frame, nil
			}
		}
		i++
	}
	s.pos = i
	return nil, nil
}

// fill moves the unreturned bytes to the front of the buffer, grows it up to
// max if it is full, and reads once.
func (s *FrameSplitter) fill() {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.pos -= s.start
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		nb := make([]byte, min(2*len(s.buf), s.max))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		s.err = err
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
