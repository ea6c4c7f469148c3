package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// healthCheck is what the healthCheckNodePort of an externalTrafficPolicy
// Local Service reports.
type healthCheck struct {
	port           int
	localEndpoints int
}

// healthServer serves every healthCheckNodePort as upstream does: 200 with
// the count of local endpoints when there is one, 503 otherwise, so that an
// external load balancer sends traffic only to nodes that can answer it.
type healthServer struct {
	listen func(network, address string) (net.Listener, error)

	mu       sync.Mutex
	checks   map[types.NamespacedName]healthCheck
	servers  map[int]*http.Server         // by port
	services map[int]types.NamespacedName // port -> Service
}

func newHealthServer(listen func(network, address string) (net.Listener, error)) *healthServer {
	return &healthServer{
		listen:   listen,
		checks:   map[types.NamespacedName]healthCheck{},
		servers:  map[int]*http.Server{},
		services: map[int]types.NamespacedName{},
	}
}

// update records the checks of the recomputed Services (all of them when
// full) and opens or closes listeners to match.
func (h *healthServer) update(keys []types.NamespacedName, checks map[types.NamespacedName]healthCheck, full bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if full {
		h.checks = map[types.NamespacedName]healthCheck{}
	}
	for _, k := range keys {
		if c, ok := checks[k]; ok {
			h.checks[k] = c
		} else {
			delete(h.checks, k)
		}
	}
	want := map[int]types.NamespacedName{}
	for k, c := range h.checks {
		want[c.port] = k
	}
	for port, srv := range h.servers {
		if _, ok := want[port]; !ok {
			srv.Close()
			delete(h.servers, port)
			delete(h.services, port)
		}
	}
	for port, k := range want {
		h.services[port] = k
		if _, ok := h.servers[port]; ok {
			continue
		}
		l, err := h.listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue // retried on the next sync that touches it
		}
		srv := &http.Server{Handler: h.handler(port)}
		h.servers[port] = srv
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				_ = l.Close()
			}
		}()
	}
}

func (h *healthServer) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.mu.Lock()
		k := h.services[port]
		c := h.checks[k]
		h.mu.Unlock()
		body := map[string]any{
			"service":             map[string]string{"namespace": k.Namespace, "name": k.Name},
			"localEndpoints":      c.localEndpoints,
			"serviceProxyHealthy": true,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if c.localEndpoints == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}

func (h *healthServer) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, srv := range h.servers {
		srv.Close()
		delete(h.servers, port)
	}
}
