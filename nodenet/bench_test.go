package nodenet

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// BenchmarkPodToPodThroughput measures TCP throughput from a pod to another
// pod on the same node and to a pod on another node, for each backend, and
// reports cross-node throughput as a fraction of same-node ("x-same-node"),
// the figure issue 8 asks for. Each iteration sends one round of
// benchRound bytes over each path in turn, so that the load of other work
// on the machine weighs on both alike. All namespaces are on this host: the
// ratio shows what routing (and, for vxlan, encapsulation) costs in CPU, not
// a physical network's speed.
func BenchmarkPodToPodThroughput(b *testing.B) {
	for _, backend := range []Backend{HostGW, VXLAN} {
		b.Run(string(backend), func(b *testing.B) {
			c := newLabCluster(b, backend, 2, 1)
			client, local, remote := c.nodes[0].pods[0], c.nodes[0].pods[1], c.nodes[1].pods[0]
			same, cross := dialSink(b, client, local), dialSink(b, client, remote)
			same.round(b) // warm up both connections
			cross.round(b)
			var sameTime, crossTime time.Duration
			b.SetBytes(2 * benchRound)
			b.ResetTimer()
			for range b.N {
				sameTime += same.round(b)
				crossTime += cross.round(b)
			}
			b.StopTimer()
			mbps := func(d time.Duration) float64 { return float64(benchRound) * float64(b.N) / d.Seconds() / 1e6 }
			b.ReportMetric(mbps(sameTime), "same-node-MB/s")
			b.ReportMetric(mbps(crossTime), "cross-node-MB/s")
			b.ReportMetric(sameTime.Seconds()/crossTime.Seconds(), "x-same-node")
		})
	}
}

const benchRound = 4 << 20

// sink is a TCP connection from one pod to a server in another pod that
// reads rounds of bytes and acknowledges each once it has read all of it.
type sink struct {
	conn net.Conn
	buf  []byte
}

func dialSink(b *testing.B, from, to labPod) *sink {
	b.Helper()
	ln, err := to.ns.Listen("tcp", netip.AddrPortFrom(to.ip, 0).String())
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var size [8]byte
		for {
			if _, err := io.ReadFull(conn, size[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint64(size[:]))); err != nil {
				return
			}
			if _, err := conn.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := from.ns.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &sink{conn: conn, buf: make([]byte, benchRound)}
}

// round sends benchRound bytes and returns how long they took to arrive.
func (s *sink) round(b *testing.B) time.Duration {
	start := time.Now()
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], benchRound)
	if _, err := s.conn.Write(size[:]); err != nil {
		b.Fatal(err)
	}
	if _, err := s.conn.Write(s.buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(s.conn, size[:1]); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
