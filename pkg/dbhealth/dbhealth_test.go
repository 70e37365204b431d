package dbhealth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// pinger answers while ok is set.
type pinger struct{ ok atomic.Bool }

func (p *pinger) Ping(context.Context) error {
	if p.ok.Load() {
		return nil
	}
	return errors.New("no answer")
}

// TestMonitor: a failure makes the database down until a ping answers.
func TestMonitor(t *testing.T) {
	p := &pinger{}
	m := New(p, nil)
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Up() {
		t.Fatal("down before any failure")
	}
	m.Failed(errors.New("timeout"))
	if m.Up() {
		t.Fatal("up after a failure")
	}
	p.ok.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for !m.Up() {
		if time.Now().After(deadline) {
			t.Fatal("still down after the database answered pings")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
