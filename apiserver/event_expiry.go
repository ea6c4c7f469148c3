package apiserver

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Events expire like upstream's --event-ttl: an event last seen more than
// eventTTL ago is deleted. Without this every controller's events would
// pile up in storage forever. There is no maintenance loop to wire: event
// writes themselves start a sweep, at most once per eventSweepInterval.
const (
	eventTTL           = time.Hour
	eventSweepInterval = time.Minute
)

// admitEvent only schedules a sweep of expired events.
func (s *Server) admitEvent(_ context.Context, _, _ runtime.Object, dryRun bool) error {
	if dryRun {
		return nil
	}
	s.eventSweep.Lock()
	due := s.now().Sub(s.eventSweep.last) >= eventSweepInterval
	if due {
		s.eventSweep.last = s.now()
	}
	s.eventSweep.Unlock()
	if due {
		go s.sweepExpiredEvents()
	}
	return nil
}

// sweepExpiredEvents deletes every event last seen before now-eventTTL.
// Events changed meanwhile (a conflict) are left for the next sweep.
func (s *Server) sweepExpiredEvents() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _ := s.resources.lookup(coreV1.WithResource("events"))
	kvs, _, err := s.listAll(ctx, storagePrefix(events, ""))
	if err != nil {
		return
	}
	cutoff := s.now().Add(-eventTTL)
	for _, kv := range kvs {
		obj, err := s.fromKV(events, kv)
		if err != nil {
			continue
		}
		if lastSeen(obj.(*corev1.Event)).Before(cutoff) {
			_, _ = s.store.Delete(ctx, kv.Key, kv.ModRevision)
		}
	}
}

// lastSeen is the latest time an event says it happened.
func lastSeen(ev *corev1.Event) time.Time {
	t := ev.CreationTimestamp.Time
	for _, c := range []time.Time{ev.LastTimestamp.Time, ev.EventTime.Time} {
		if c.After(t) {
			t = c
		}
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	return t
}
