package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// TestAnsweredOnce: a task whose origin went on to a line or a commit job
// is not answered by what happens to it afterwards (a panic's errPanic):
// the line or the job answers it, once. A reload part is answered too.
func TestAnsweredOnce(t *testing.T) {
	s := &shard{}
	calls := 0
	tk := task{kind: taskAdmin, done: func(error) { calls++ }}
	l := newLine(nil)
	s.wait(l, &tk, time.Now())
	s.answer(&tk, errPanic)
	if calls != 0 {
		t.Fatalf("a task in a line was answered %d times by its first handler", calls)
	}
	if len(l.tasks) != 1 || l.tasks[0].done == nil {
		t.Fatal("the line did not keep the task's origin")
	}
	s.answer(&l.tasks[0], nil)
	if calls != 1 {
		t.Fatalf("answered %d times, want 1", calls)
	}

	tk = task{kind: taskEvent, done: func(error) { calls++ }}
	job := eventJob(&tk, "room", imc.Result{})
	s.answer(&tk, errPanic)
	if calls != 1 || job.done == nil {
		t.Fatalf("an event whose job holds its origin was answered again (%d calls)", calls)
	}

	p := &reloadPart{done: make(chan error, 1)}
	s.answer(&task{kind: taskReload, reload: p}, errPanic)
	if err := <-p.done; !errors.Is(err, errPanic) {
		t.Fatalf("a reload part ended by a panic said %v", err)
	}
}
