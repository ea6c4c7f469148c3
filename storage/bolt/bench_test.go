package bolt

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
	"github.com/tinykube/tinykube/storage/storagetest"
)

func BenchmarkStore(b *testing.B) {
	storagetest.Benchmark(b, storagetest.Backend{
		Open: func(t testing.TB) storage.Interface {
			return openTemp(t, Options{})
		},
	})
}

const openChildEnv = "TINYKUBE_OPEN_BENCH_DB"

// TestOpenChild opens the store given by the benchmark below in a fresh
// process, reads one key, and prints how long that took and the process's
// memory; then the same after reading a first list page of 500 keys.
func TestOpenChild(t *testing.T) {
	path := os.Getenv(openChildEnv)
	if path == "" {
		t.Skip("helper process for BenchmarkOpen100kKeys")
	}
	start := time.Now()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(context.Background(), "/bench/00000042", 0); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	rss, anon := memoryKiB()
	res, err := s.List(context.Background(), "/bench/", storage.ListOptions{Limit: 500})
	if err != nil || len(res.KVs) != 500 {
		t.Fatalf("first page: %d keys, %v", len(res.KVs), err)
	}
	listRSS, listAnon := memoryKiB()
	fmt.Printf("figures %d %d %d %d %d\n", elapsed.Microseconds(), rss, anon, listRSS, listAnon)
}

// memoryKiB returns VmRSS and RssAnon. VmRSS counts the pages of the
// bbolt file mapped in, which the kernel shares with its page cache and
// maps a whole (large) folio at a time; RssAnon is the process's own
// memory. (VmHWM is no use here: it counts the parent's memory from before
// exec.)
func memoryKiB() (rss, anon int64) {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "RssAnon:":
			anon, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, anon
}

// BenchmarkOpen100kKeys measures a cold start of a store holding 100,000
// keys of 2 KiB: a new process opens it, reads a key and a first list page.
func BenchmarkOpen100kKeys(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	b.Setenv(openChildEnv, path)
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 2048)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	storagetest.Fill(b, s, "/bench/", 100_000, value)
	s.Close()
	var figures [][5]float64
	for b.Loop() {
		out, err := exec.Command(os.Args[0], "-test.run=^TestOpenChild$", "-test.count=1", "-test.v").CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var f [5]float64
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "figures ") {
				fmt.Sscanf(line, "figures %f %f %f %f %f", &f[0], &f[1], &f[2], &f[3], &f[4])
			}
		}
		if f[0] == 0 {
			b.Fatalf("child printed no figures:\n%s", out)
		}
		figures = append(figures, f)
	}
	worst := func(i int) float64 {
		return slices.MaxFunc(figures, func(a, b [5]float64) int { return cmp.Compare(a[i], b[i]) })[i]
	}
	b.ReportMetric(worst(0)/1000, "max-open-ms")
	b.ReportMetric(worst(1)/1024, "rss-MiB")
	b.ReportMetric(worst(2)/1024, "anon-MiB")
	b.ReportMetric(worst(3)/1024, "rss-after-list-MiB")
	b.ReportMetric(worst(4)/1024, "anon-after-list-MiB")
}
