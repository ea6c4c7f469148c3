package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/tinykube/tinykube/controller/clusterdns"
	"github.com/tinykube/tinykube/controller/clusterroleaggregation"
	"github.com/tinykube/tinykube/controller/cronjob"
	"github.com/tinykube/tinykube/controller/csrapproving"
	"github.com/tinykube/tinykube/controller/deployment"
	"github.com/tinykube/tinykube/controller/disruption"
	"github.com/tinykube/tinykube/controller/endpointslice"
	"github.com/tinykube/tinykube/controller/endpointslicemirroring"
	"github.com/tinykube/tinykube/controller/garbagecollector"
	"github.com/tinykube/tinykube/controller/job"
	"github.com/tinykube/tinykube/controller/namespace"
	"github.com/tinykube/tinykube/controller/nodeipam"
	"github.com/tinykube/tinykube/controller/nodelifecycle"
	"github.com/tinykube/tinykube/controller/replicaset"
	"github.com/tinykube/tinykube/controller/serviceaccount"
	"github.com/tinykube/tinykube/controller/servicelb"
)

// lockedBuffer is a log sink several goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON line written so far.
func (b *lockedBuffer) lines(t testing.TB) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for dec.More() {
		var l map[string]any
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("log line: %v", err)
		}
		out = append(out, l)
	}
	return out
}

func TestEveryControllerLogsThroughTheManagerLoggerWithItsName(t *testing.T) {
	var sink lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startManagerWith(t, ManagerConfig{Logger: logger, ServiceLB: true, ClusterDNS: netip.MustParseAddr("10.43.0.10")})
	want := []string{
		deployment.Name, replicaset.Name, job.Name, cronjob.Name, endpointslice.Name, endpointslicemirroring.Name,
		garbagecollector.Name, namespace.Name, nodeipam.Name, nodelifecycle.Name, clusterroleaggregation.Name,
		disruption.Name, serviceaccount.Name, csrapproving.Name, clusterdns.Name, servicelb.Name,
	}
	eventually(t, "every controller's starting line", func(context.Context) (bool, error) {
		var started []string
		for _, l := range sink.lines(t) {
			if c, ok := l["component"].(string); ok && l["msg"] == "starting" {
				started = append(started, c)
			}
		}
		for _, name := range want {
			if !slices.Contains(started, name) {
				return false, nil
			}
		}
		return true, nil
	})
}
