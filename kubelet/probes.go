package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tinykube/tinykube/kubelet/containers"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
)

type probeKind int

const (
	readiness probeKind = iota
	liveness
	startup
)

func (p probeKind) String() string { return [...]string{"Readiness", "Liveness", "Startup"}[p] }

type probeKey struct {
	uid, container string
	kind           probeKind
}

// probeResult is the latest verdict of one probe of one container
// instance.
type probeResult struct {
	containerID string
	success     bool
}

// probeManager runs one worker per probe of each running container and
// keeps their results. Results change pod status only through the pod
// worker, which a changed result wakes, so status writes stay batched.
type probeManager struct {
	k *Kubelet

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
	results map[probeKey]probeResult
}

type probeWorker struct {
	containerID string
	stop        context.CancelFunc
}

func newProbeManager(k *Kubelet) *probeManager {
	return &probeManager{k: k, workers: map[probeKey]*probeWorker{}, results: map[probeKey]probeResult{}}
}

// sync starts workers for the probes of running containers and stops those
// of containers that are gone or replaced.
func (m *probeManager) sync(pod *corev1.Pod, latest map[string]containers.Status, podIP netip.Addr) {
	uid := string(pod.UID)
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[probeKey]string{}
	probed := []*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			probed = append(probed, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		probed = append(probed, &pod.Spec.Containers[i])
	}
	for _, c := range probed {
		st, ok := latest[c.Name]
		if !ok || st.State != containers.StateRunning {
			continue
		}
		for kind, p := range map[probeKind]*corev1.Probe{readiness: c.ReadinessProbe, liveness: c.LivenessProbe, startup: c.StartupProbe} {
			if p == nil {
				continue
			}
			key := probeKey{uid, c.Name, kind}
			want[key] = st.ID
			if w, ok := m.workers[key]; ok && w.containerID == st.ID {
				continue
			} else if ok {
				w.stop()
			}
			ctx, cancel := context.WithCancel(context.Background())
			m.workers[key] = &probeWorker{containerID: st.ID, stop: cancel}
			go m.run(ctx, key, st.ID, pod, c, p, podIP)
		}
	}
	for key, w := range m.workers {
		if key.uid == uid && want[key] != w.containerID {
			w.stop()
			delete(m.workers, key)
			delete(m.results, key)
		}
	}
}

func (m *probeManager) result(key probeKey, id string) (bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[key]
	if !ok || r.containerID != id {
		return false, false
	}
	return r.success, true
}

// started reports whether the container passed its startup probe (true
// without one).
func (m *probeManager) started(uid, name, id string) bool {
	if !m.hasWorker(probeKey{uid, name, startup}) {
		return true
	}
	ok, _ := m.result(probeKey{uid, name, startup}, id)
	return ok
}

// ready reports the readiness of a running container: its probe's last
// verdict, or true without a probe.
func (m *probeManager) ready(uid, name, id string, hasProbe bool) bool {
	if !hasProbe {
		return true
	}
	ok, _ := m.result(probeKey{uid, name, readiness}, id)
	return ok
}

// livenessFailed names the probe ("startup" or "liveness") the container
// failed, which gets it killed and restarted, or is empty.
func (m *probeManager) livenessFailed(uid, name, id string) string {
	for _, kind := range []probeKind{startup, liveness} {
		if ok, known := m.result(probeKey{uid, name, kind}, id); known && !ok {
			return strings.ToLower(kind.String())
		}
	}
	return ""
}

func (m *probeManager) hasWorker(key probeKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.workers[key]
	return ok
}

// forget drops the workers and results of one container.
func (m *probeManager) forget(uid, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if key.uid == uid && key.container == name {
			w.stop()
			delete(m.workers, key)
		}
	}
	for key := range m.results {
		if key.uid == uid && key.container == name {
			delete(m.results, key)
		}
	}
}

func (m *probeManager) stopPod(uid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if key.uid == uid {
			w.stop()
			delete(m.workers, key)
		}
	}
	for key := range m.results {
		if key.uid == uid {
			delete(m.results, key)
		}
	}
}

func (m *probeManager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		w.stop()
		delete(m.workers, key)
	}
}

func (m *probeManager) set(key probeKey, id string, success bool) {
	m.mu.Lock()
	prev, ok := m.results[key]
	w, live := m.workers[key]
	if !live || w.containerID != id {
		m.mu.Unlock()
		return
	}
	m.results[key] = probeResult{containerID: id, success: success}
	m.mu.Unlock()
	if !ok || prev.success != success || prev.containerID != id {
		m.k.queue.Add(key.uid)
	}
}

// run is one probe worker: upstream's timing (initialDelaySeconds,
// periodSeconds, timeoutSeconds, success and failure thresholds).
func (m *probeManager) run(ctx context.Context, key probeKey, id string, pod *corev1.Pod, c *corev1.Container, p *corev1.Probe, podIP netip.Addr) {
	clk := m.k.clock
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	successThreshold := int(max(p.SuccessThreshold, 1))
	failureThreshold := int(max(p.FailureThreshold, 3))
	if p.FailureThreshold > 0 {
		failureThreshold = int(p.FailureThreshold)
	}
	if key.kind == liveness || key.kind == startup {
		successThreshold = 1
	}
	if key.kind == readiness {
		m.set(key, id, false)
	}
	if d := seconds(p.InitialDelaySeconds, 0); d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(d):
		}
	}
	t := clk.NewTicker(period)
	defer t.Stop()
	var successes, failures int
	for {
		// Liveness and readiness wait for the startup probe.
		if key.kind == startup || m.started(key.uid, key.container, id) {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			ok, msg := m.probe(pctx, id, pod, c, p, podIP)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if ok {
				successes, failures = successes+1, 0
			} else {
				successes, failures = 0, failures+1
				m.k.log.Debug("probe failed", "probe", key.kind, "pod", klog.KObj(pod), "container", c.Name, "message", msg)
				m.k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventUnhealthy, "%s probe failed: %s", key.kind, msg)
			}
			switch {
			case ok && successes >= successThreshold:
				m.set(key, id, true)
				if key.kind == startup {
					return // startup probes stop once they pass
				}
			case !ok && failures >= failureThreshold:
				// A failed startup probe kills the container like a failed
				// liveness probe (livenessFailed).
				m.set(key, id, false)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func seconds(v int32, def int) time.Duration {
	if v <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(v) * time.Second
}

// probe runs one check and reports success and a message.
func (m *probeManager) probe(ctx context.Context, id string, pod *corev1.Pod, c *corev1.Container, p *corev1.Probe, podIP netip.Addr) (bool, string) {
	host := podIP.String()
	switch {
	case p.Exec != nil:
		var out bytes.Buffer
		code, err := m.k.runtime.Exec(ctx, id, p.Exec.Command, &out)
		if errors.Is(err, context.DeadlineExceeded) {
			return false, fmt.Sprintf("command %q timed out", strings.Join(p.Exec.Command, " "))
		}
		if err != nil {
			return false, err.Error()
		}
		// Upstream's message is the command's output.
		return code == 0, out.String()
	case p.HTTPGet != nil:
		code, err := doHTTPGet(ctx, p.HTTPGet, c, podIP, "kube-probe/1.37")
		if err != nil {
			return false, err.Error()
		}
		if code >= 200 && code < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", code)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
	return false, "unsupported probe handler"
}

// doHTTPGet makes an httpGet action's request to the container, as
// upstream's probes and lifecycle hooks do, and returns the status code.
func doHTTPGet(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP netip.Addr, userAgent string) (int, error) {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return 0, err
	}
	host := podIP.String()
	if g.Host != "" {
		host = g.Host
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Set(h.Name, h.Value)
		}
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // upstream does not verify probe targets
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container %s", p.StrVal, c.Name)
}
