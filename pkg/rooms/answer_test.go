package rooms

import (
	"errors"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// TestAnsweredOnce: a task whose origin went on to wait behind a commit,
// or to a commit job, is not answered by what happens to it afterwards (a
// panic's errPanic): what it waits in, or the job, answers it, once. A
// reload part is answered too.
func TestAnsweredOnce(t *testing.T) {
	s := &shard{}
	calls := 0
	tk := task{kind: taskAdmin, done: func(error) { calls++ }}
	w := newWaiters(nil)
	s.wait(w, &tk, time.Now())
	tk.answer(s.env, errPanic)
	if calls != 0 {
		t.Fatalf("a task waiting behind a commit was answered %d times by its first handler", calls)
	}
	if len(w.tasks) != 1 || w.tasks[0].done == nil {
		t.Fatal("the waiters did not keep the task's origin")
	}
	w.tasks[0].answer(s.env, nil)
	if calls != 1 {
		t.Fatalf("answered %d times, want 1", calls)
	}

	tk = task{kind: taskEvent, done: func(error) { calls++ }}
	job := eventJob(&tk, "room", imc.Result{})
	tk.answer(s.env, errPanic)
	if calls != 1 || job.done == nil {
		t.Fatalf("an event whose job holds its origin was answered again (%d calls)", calls)
	}

	p := &reloadPart{done: make(chan error, 1)}
	(&task{kind: taskReload, reload: p}).answer(s.env, errPanic)
	if err := <-p.done; !errors.Is(err, errPanic) {
		t.Fatalf("a reload part ended by a panic said %v", err)
	}
}
