package queue

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"

	st "github.com/tinykube/tinykube/scheduler/testing"
)

func newQueue() (*Queue, *testingclock.FakeClock) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return New(Config{Clock: clk, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second}), clk
}

// popNow pops without blocking: the test fails when nothing is active.
func popNow(t *testing.T, q *Queue) *QueuedPod {
	t.Helper()
	if a, _, _ := q.Counts(); a == 0 {
		t.Fatal("nothing active to pop")
	}
	return q.Pop(context.Background())
}

func TestPopOrdersByPriorityThenAge(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("old-low").Obj())
	clk.Step(time.Millisecond)
	q.Add(st.MakePod().Name("high").Priority(1000).Obj())
	clk.Step(time.Millisecond)
	q.Add(st.MakePod().Name("new-low").Obj())
	clk.Step(time.Millisecond)
	q.Add(st.MakePod().Name("negative").Priority(-5).Obj())
	var got []string
	for range 4 {
		got = append(got, popNow(t, q).Pod.Name)
	}
	want := []string{"high", "old-low", "new-low", "negative"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pop order = %v, want %v", got, want)
		}
	}
}

func TestUnschedulablePodWaitsForAClusterChange(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	p := popNow(t, q)
	q.AddUnschedulable(p, q.SchedulingCycle(), false)
	clk.Step(time.Hour / 60) // a minute: backoff long over, but no change yet
	q.Flush()
	if a, b, u := q.Counts(); a != 0 || b != 0 || u != 1 {
		t.Fatalf("counts = %d active, %d backoff, %d unschedulable; want it unschedulable", a, b, u)
	}
	q.MoveAllToActiveOrBackoff()
	if a, _, _ := q.Counts(); a != 1 {
		t.Fatal("a cluster change did not make the pod active")
	}
}

func TestMovedPodBacksOffFirst(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	p := popNow(t, q)
	q.AddUnschedulable(p, q.SchedulingCycle(), false)
	q.MoveAllToActiveOrBackoff()
	if _, b, _ := q.Counts(); b != 1 {
		t.Fatal("a pod that just failed did not back off")
	}
	clk.Step(999 * time.Millisecond)
	q.Flush()
	if a, _, _ := q.Counts(); a != 0 {
		t.Fatal("backoff ended before 1s")
	}
	clk.Step(time.Millisecond)
	q.Flush()
	if a, _, _ := q.Counts(); a != 1 {
		t.Fatal("backoff did not end after 1s")
	}
}

func TestBackoffDoublesUpToTheMaximum(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	for attempt, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		p := popNow(t, q)
		if p.Attempts != attempt+1 {
			t.Fatalf("attempts = %d, want %d", p.Attempts, attempt+1)
		}
		q.AddUnschedulable(p, q.SchedulingCycle(), true)
		clk.Step(want*time.Second - time.Millisecond)
		q.Flush()
		if a, _, _ := q.Counts(); a != 0 {
			t.Fatalf("attempt %d: backoff shorter than %ds", attempt+1, want)
		}
		clk.Step(time.Millisecond)
		q.Flush()
		if a, _, _ := q.Counts(); a != 1 {
			t.Fatalf("attempt %d: backoff longer than %ds", attempt+1, want)
		}
	}
}

func TestChangeDuringTheCycleSendsFailureToBackoff(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	p := popNow(t, q)
	cycle := q.SchedulingCycle()
	// A node is added while the pod is being scheduled.
	q.MoveAllToActiveOrBackoff()
	q.AddUnschedulable(p, cycle, false)
	if _, b, u := q.Counts(); b != 1 || u != 0 {
		t.Fatalf("backoff=%d unschedulable=%d: the pod would miss the change", b, u)
	}
}

func TestUnschedulablePodsAreRetriedAfterTheMaximumWait(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	q.AddUnschedulable(popNow(t, q), q.SchedulingCycle(), false)
	clk.Step(DefaultMaxUnschedulableDuration + time.Second)
	q.Flush()
	if a, _, _ := q.Counts(); a != 1 {
		t.Fatal("pod not retried after the maximum unschedulable wait")
	}
}

func TestDeleteDropsThePodEverywhere(t *testing.T) {
	cases := []struct {
		name  string
		place func(q *Queue, p *corev1.Pod)
	}{
		{"active", func(q *Queue, p *corev1.Pod) { q.Add(p) }},
		{"backoff", func(q *Queue, p *corev1.Pod) {
			q.Add(p)
			q.AddUnschedulable(q.Pop(context.Background()), q.SchedulingCycle(), true)
		}},
		{"unschedulable", func(q *Queue, p *corev1.Pod) {
			q.Add(p)
			q.AddUnschedulable(q.Pop(context.Background()), q.SchedulingCycle(), false)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := newQueue()
			p := st.MakePod().Name("p").Obj()
			tc.place(q, p)
			q.Delete(p.UID)
			if a, b, u := q.Counts(); a+b+u != 0 {
				t.Fatalf("counts after delete = %d/%d/%d", a, b, u)
			}
		})
	}
}

func TestPodDeletedWhileInFlightIsNotRequeued(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	p := popNow(t, q)
	q.Delete(p.Pod.UID)
	q.AddUnschedulable(p, q.SchedulingCycle(), true)
	if a, b, u := q.Counts(); a+b+u != 0 {
		t.Fatalf("deleted pod requeued: %d/%d/%d", a, b, u)
	}
}

func TestAddWhileInFlightIsIgnored(t *testing.T) {
	q, _ := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	p := popNow(t, q)
	q.Add(p.Pod)
	if a, _, _ := q.Counts(); a != 0 {
		t.Fatal("a pod being scheduled was queued twice")
	}
	q.Done(p.Pod.UID)
}

func TestLabelChangeRetriesAnUnschedulablePod(t *testing.T) {
	q, clk := newQueue()
	q.Add(st.MakePod().Name("p").Obj())
	q.AddUnschedulable(popNow(t, q), q.SchedulingCycle(), false)
	clk.Step(2 * time.Second)
	q.Update(st.MakePod().Name("p").Obj())
	if _, _, u := q.Counts(); u != 1 {
		t.Fatal("an unchanged update moved the pod")
	}
	q.Update(st.MakePod().Name("p").Label("tier", "db").Obj())
	if a, _, _ := q.Counts(); a != 1 {
		t.Fatal("a label change did not retry the pod")
	}
}

func TestPopReturnsNilWhenTheContextEnds(t *testing.T) {
	q, _ := newQueue()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *QueuedPod)
	go func() { got <- q.Pop(ctx) }()
	cancel()
	select {
	case p := <-got:
		if p != nil {
			t.Fatalf("Pop returned %v", p.Pod.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pop did not return after cancel")
	}
}

func TestUpdateQueuesAPodNotYetQueued(t *testing.T) {
	// A pod whose scheduling gates were removed arrives as an update.
	q, _ := newQueue()
	q.Update(st.MakePod().Name("ungated").Obj())
	if a, _, _ := q.Counts(); a != 1 {
		t.Fatal("an update of an unknown pending pod did not queue it")
	}
}
