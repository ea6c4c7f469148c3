package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
)

// Benchmark measures the figures the API server depends on: write
// throughput alone and with 16 writers, get latency, paginated lists, and
// watch fan-out latency. Values are 2 KiB, about a Pod's JSON.
func Benchmark(b *testing.B, backend Backend) {
	value := make([]byte, 2048)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	b.Run("create/sequential", func(b *testing.B) {
		s := openBench(b, backend)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if _, err := s.Create(ctx, fmt.Sprintf("/bench/%d", i), value); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("create/16-writers", func(b *testing.B) {
		s := openBench(b, backend)
		ctx := context.Background()
		var next atomic.Int64
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Create(ctx, fmt.Sprintf("/bench/%d", next.Add(1)), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	})
	b.Run("get/10k-keys", func(b *testing.B) {
		s := openBench(b, backend)
		Fill(b, s, "/bench/", 10_000, value)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 1))
		for b.Loop() {
			if _, err := s.Get(ctx, fmt.Sprintf("/bench/%08d", rng.IntN(10_000)), 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("list/10k-keys-limit-500", func(b *testing.B) {
		s := openBench(b, backend)
		Fill(b, s, "/bench/", 10_000, value)
		ctx := context.Background()
		pages := 0
		for b.Loop() {
			opts := storage.ListOptions{Limit: 500}
			n := 0
			for {
				res, err := s.List(ctx, "/bench/", opts)
				if err != nil {
					b.Fatal(err)
				}
				pages++
				n += len(res.KVs)
				if res.Continue == "" {
					break
				}
				opts.Continue = res.Continue
			}
			if n != 10_000 {
				b.Fatalf("listed %d keys", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(pages), "µs/page")
	})
	b.Run("watch/fan-out-100", func(b *testing.B) {
		benchFanOut(b, openBench(b, backend), 100, value)
	})
}

func openBench(b *testing.B, backend Backend) storage.Interface {
	s := backend.Open(b)
	b.Cleanup(func() { s.Close() })
	return s
}

// Fill creates n keys prefix%08d with 64 concurrent writers.
func Fill(b *testing.B, s storage.Interface, prefix string, n int, value []byte) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := s.Create(ctx, fmt.Sprintf("%s%08d", prefix, i), value); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// benchFanOut writes one key at a time and measures, for every watcher,
// the time from the start of the write (so including its commit) to the
// event's arrival, and how far behind the first watcher the others get it.
func benchFanOut(b *testing.B, s storage.Interface, watchers int, value []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type arrival struct {
		rev int64
		at  time.Time
	}
	arrivals := make([][]arrival, watchers)
	var ready, done sync.WaitGroup
	var want atomic.Int64 // revision of the last write; watchers stop there
	want.Store(-1)
	for i := range watchers {
		w, err := s.Watch(ctx, "/fan/", 0)
		if err != nil {
			b.Fatal(err)
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			for ev := range w.Events() {
				arrivals[i] = append(arrivals[i], arrival{ev.Revision(), time.Now()})
				if w := want.Load(); w > 0 && ev.Revision() >= w {
					return
				}
			}
		}()
	}
	ready.Wait()
	started := map[int64]time.Time{}
	var last int64
	i := 0
	for b.Loop() {
		t0 := time.Now()
		kv, err := s.Create(ctx, fmt.Sprintf("/fan/%d", i), value)
		if err != nil {
			b.Fatal(err)
		}
		started[kv.ModRevision] = t0
		last = kv.ModRevision
		i++
	}
	// A last write that every watcher sees after the measured ones tells
	// them to stop; revisions grow by one per write.
	want.Store(last + 1)
	if _, err := s.Create(ctx, "/fan/stop", value); err != nil {
		b.Fatal(err)
	}
	done.Wait()
	// lat runs from the start of the write, so it includes the commit
	// (fsync); spread runs from the first watcher's arrival, so it is the
	// fan-out alone.
	var lat, spread []time.Duration
	first := map[int64]time.Time{}
	for _, list := range arrivals {
		for _, a := range list {
			if f, ok := first[a.rev]; !ok || a.at.Before(f) {
				first[a.rev] = a.at
			}
		}
	}
	for _, list := range arrivals {
		for _, a := range list {
			if t0, ok := started[a.rev]; ok {
				lat = append(lat, a.at.Sub(t0))
				spread = append(spread, a.at.Sub(first[a.rev]))
			}
		}
	}
	if len(lat) != len(started)*watchers {
		b.Fatalf("%d deliveries for %d writes to %d watchers", len(lat), len(started), watchers)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	slices.Sort(spread)
	b.ReportMetric(float64(spread[len(spread)*99/100].Microseconds()), "p99-spread-µs")
}
