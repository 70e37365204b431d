package main

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// opensipsModel makes the sink fail the way the measured OpenSIPS did
// (opensips-wire/perf/results.txt), so that the delivery scenarios show
// what imcd's scheduler does about it: a bounded MI receive buffer that
// drops what overflows it, one MI process serving a finite rate, and
// members who never answer (408 after tm's fr_timeout). pkg/opensipstest
// models the same; imcbench keeps its own lean sink because the fake
// parses and records every request, which would cost more CPU than imcd on
// this machine and blur the figures.
type opensipsModel struct {
	// recvBuffer is how many requests the MI socket's buffer holds; one
	// that comes while it is full is dropped and never answered.
	recvBuffer int
	// rate is how many requests per second the MI process serves.
	rate float64
	// deadPrefix starts the user part of members who never answer: their
	// requests end "408 Request Timeout" after frTimeout.
	deadPrefix string
	frTimeout  time.Duration
}

// queuedRequest is one request in the modelled receive buffer.
type queuedRequest struct {
	b    []byte
	from netip.AddrPort
}

// startModel sets the model up: the receive buffer, the MI process that
// drains it at the model's rate, and the sender of the 408s.
func (s *sink) startModel(m *opensipsModel) {
	s.model = m
	s.queue = make(chan queuedRequest, max(m.recvBuffer, 1))
	s.timeouts = make(chan delayedReply, 1<<20)
	if m.deadPrefix != "" {
		s.deadURI = []byte(`"ruri":"sip:` + m.deadPrefix)
	}
	s.wg.Add(2)
	go s.serveQueue()
	go s.sendTimeouts()
}

// serveQueue is the modelled MI process: it serves the buffered requests
// in order, no faster than the model's rate.
func (s *sink) serveQueue() {
	defer s.wg.Done()
	var p fastjson.Parser
	out := make([]byte, 0, 256)
	var interval time.Duration
	if s.model.rate > 0 {
		interval = time.Duration(float64(time.Second) / s.model.rate)
	}
	// Each request takes its turn at the rate; an idle process saves at
	// most 2 ms of turns, which absorbs the oversleeps of time.Sleep.
	const credit = 2 * time.Millisecond
	next := time.Now()
	for r := range s.queue {
		if interval > 0 {
			now := time.Now()
			if next.Before(now.Add(-credit)) {
				next = now.Add(-credit)
			}
			if next.After(now) {
				time.Sleep(next.Sub(now))
			}
			next = next.Add(interval)
		}
		out = s.serve(out[:0], &p, r.b, r.from)
	}
}

// sendTimeouts answers the requests to members who never answer, each
// frTimeout after it came ("408 Request Timeout", without Message, as tm
// does).
func (s *sink) sendTimeouts() {
	defer s.wg.Done()
	out := make([]byte, 0, 128)
	for r := range s.timeouts {
		if wait := r.due - s.clk.now(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
		out = append(out[:0], `{"jsonrpc":"2.0","result":{"Status":"408 Request Timeout"},"id":`...)
		out = strconv.AppendUint(out, r.id, 10)
		out = append(out, '}')
		if _, err := s.conn.WriteToUDPAddrPort(out, r.to); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
