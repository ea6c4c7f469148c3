package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// BenchmarkLabEndpointChangeToRules measures the time from writing an
// EndpointSlice (one endpoint turning not ready, or ready again) to the
// kernel holding the new rules, read back with `nft list table` in the node
// namespace (so the figures include up to one listing, a few ms).
func BenchmarkLabEndpointChangeToRules(b *testing.B) {
	l := newLab(b, "pod1", "pod2")
	l.service("web", corev1.ServiceTypeClusterIP, 0)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		var notReady []string
		want := "mod 2 map"
		if i%2 == 0 {
			notReady, want = []string{"pod2"}, "mod 1 map"
		}
		start := time.Now()
		l.endpoints("web", []string{"pod1", "pod2"}, notReady...)
		deadline := start.Add(10 * time.Second)
		for {
			out, err := exec.Command("ip", "netns", "exec", l.node.Name, "nft", "list", "table", "inet", "tinykube").Output()
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(string(out), want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("rules never showed %q", want)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLabNodePortVsDirect compares, in one run, a client reaching a pod
// through NODE_IP:nodePort with the same client reaching the pod's IP
// directly (routed by the node, no Service): bulk download throughput, and
// the latency of a request on a fresh connection.
func BenchmarkLabNodePortVsDirect(b *testing.B) {
	l := newLab(b, "pod1")
	l.service("web", corev1.ServiceTypeNodePort, 30100)
	l.endpoints("web", []string{"pod1"})
	l.client.IP("route", "add", "10.42.0.0/16", "via", labNodeIP.String())
	nodePort := netip.AddrPortFrom(labNodeIP, 30100)
	direct := netip.AddrPortFrom(l.pods["pod1"], 8080)
	waitAnswer(b, l, nodePort)

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: l.client.DialContext, DisableKeepAlives: true}}
	download := func(addr netip.AddrPort, n int) time.Duration {
		start := time.Now()
		resp, err := client.Get(fmt.Sprintf("http://%s/bytes?n=%d", addr, n))
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || got != int64(n) {
			b.Fatalf("download %d of %d bytes: %v", got, n, err)
		}
		return time.Since(start)
	}
	const size = 64 << 20
	var tNode, tDirect time.Duration
	var lNode, lDirect time.Duration
	rounds := 0
	for b.Loop() {
		rounds++
		// alternate, so that load on the machine hits both alike
		tDirect += download(direct, size)
		tNode += download(nodePort, size)
		for range 20 {
			lDirect += download(direct, 1)
			lNode += download(nodePort, 1)
		}
	}
	mbps := func(d time.Duration) float64 { return float64(rounds) * size / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(tNode), "nodeport-MB/s")
	b.ReportMetric(mbps(tDirect), "direct-MB/s")
	b.ReportMetric(mbps(tNode)/mbps(tDirect), "throughput-ratio")
	b.ReportMetric(float64(lNode.Microseconds())/float64(20*rounds), "nodeport-req-us")
	b.ReportMetric(float64(lDirect.Microseconds())/float64(20*rounds), "direct-req-us")
	b.ReportMetric(float64(lDirect)/float64(lNode), "latency-ratio")
}

func waitAnswer(b *testing.B, l *lab, addr netip.AddrPort) {
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			_, err := get(l.client, addr)
			return err == nil, nil
		})
	if err != nil {
		b.Fatalf("%s never answered", addr)
	}
}
