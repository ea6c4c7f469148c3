package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkServerStartToReady measures what a user waits for after a
// restart: exec of `tinykube server` on an existing data dir until the ready
// line. It also reports the idle server's resident memory (VmRSS).
func BenchmarkServerStartToReady(b *testing.B) {
	dataDir := b.TempDir()
	first := startServer(b, dataDir)
	if err := first.stop(b); err != nil {
		b.Fatal(err)
	}
	var total, rss float64
	for b.Loop() {
		p := startServer(b, dataDir)
		total += p.readyAfter.Seconds()
		rss = max(rss, vmRSSMiB(b, p.cmd.Process.Pid))
		if err := p.stop(b); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total/float64(b.N)*1000, "ms-to-ready")
	b.ReportMetric(rss, "MiB-rss-idle")
}

func vmRSSMiB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
