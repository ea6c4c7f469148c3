package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tinykube/tinykube/kubelet/containers"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// streamCreationTimeout bounds how long the server waits for a client's
// streams after the upgrade, as upstream's.
const streamCreationTimeout = 30 * time.Second

// portForwardProtocol is the SPDY port-forward protocol.
const portForwardProtocol = "portforward.k8s.io"

// runningContainer finds the running container name of the pod ns/name.
func (k *Kubelet) runningContainer(ctx context.Context, ns, name, container string) (*corev1.Pod, containers.Status, int, string) {
	obj, exists, err := k.pods.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !exists {
		return nil, containers.Status{}, http.StatusNotFound, fmt.Sprintf("pod %q not found", name)
	}
	pod := obj.(*corev1.Pod)
	all, err := k.runtime.ListPod(ctx, string(pod.UID))
	if err != nil {
		return nil, containers.Status{}, http.StatusInternalServerError, err.Error()
	}
	st, ok := latestAttempts(all)[container]
	if !ok || st.State != containers.StateRunning {
		return nil, containers.Status{}, http.StatusBadRequest, fmt.Sprintf("container %s is not running in pod %s", container, name)
	}
	return pod, st, 0, ""
}

// serveExec is /exec/NAMESPACE/POD/CONTAINER?command=...&input=1&output=1
// &error=1&tty=1: upstream's remote command protocol (channel.k8s.io v1 to
// v4) over SPDY.
func (k *Kubelet) serveExec(w http.ResponseWriter, r *http.Request) {
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		writeStatus(w, http.StatusBadRequest, "you must specify at least 1 command")
		return
	}
	k.serveRemoteCommand(w, r, func(ctx context.Context, id string, s remoteStreams) (int, error) {
		return k.runtime.ExecStream(ctx, id, cmd, s.stdin, s.stdout, s.stderr, s.tty, s.resize)
	}, cmd)
}

// serveAttach is /attach/NAMESPACE/POD/CONTAINER?input=1&output=1&error=1
// &tty=1: the same protocol as exec, connected to the container's own
// stdio (kubectl attach, kubectl run -it).
func (k *Kubelet) serveAttach(w http.ResponseWriter, r *http.Request) {
	k.serveRemoteCommand(w, r, func(ctx context.Context, id string, s remoteStreams) (int, error) {
		return 0, k.runtime.Attach(ctx, id, s.stdin, s.stdout, s.stderr, s.resize)
	}, nil)
}

// remoteStreams are the client's streams of an exec or attach; nil when
// not asked for.
type remoteStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	tty            bool
	resize         <-chan containers.TerminalSize
}

// serveRemoteCommand upgrades an exec or attach request to SPDY, waits for
// the client's streams, runs run on the container (with a context that
// ends when the client goes away) and reports how it ended on the error
// stream.
func (k *Kubelet) serveRemoteCommand(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, id string, s remoteStreams) (int, error), cmd []string) {
	q := r.URL.Query()
	_, st, code, msg := k.runningContainer(r.Context(), r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container"))
	if code != 0 {
		writeStatus(w, code, msg)
		return
	}
	tty := boolParam(q.Get("tty"))
	want := map[string]bool{
		corev1.StreamTypeError:  true,
		corev1.StreamTypeStdin:  boolParam(q.Get("input")),
		corev1.StreamTypeStdout: boolParam(q.Get("output")),
		corev1.StreamTypeStderr: boolParam(q.Get("error")) && !tty,
	}
	protocol, err := httpstream.Handshake(r, w, remotecommand.SupportedStreamingProtocols)
	if err != nil {
		return // Handshake answered
	}
	if tty && protocol != remotecommand.StreamProtocolV1Name && protocol != remotecommand.StreamProtocolV2Name {
		want[corev1.StreamTypeResize] = true
	}
	streams, conn, ok := acceptStreams(k.log, w, r, want)
	if !ok {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		// A client that goes away ends the command.
		select {
		case <-conn.CloseChan():
			cancel()
		case <-ctx.Done():
		}
	}()
	rs := remoteStreams{tty: tty}
	if s := streams[corev1.StreamTypeStdin]; s != nil {
		rs.stdin = s
	}
	if s := streams[corev1.StreamTypeStdout]; s != nil {
		rs.stdout = s
	}
	if s := streams[corev1.StreamTypeStderr]; s != nil {
		rs.stderr = s
	}
	if s := streams[corev1.StreamTypeResize]; s != nil {
		resize := make(chan containers.TerminalSize, 4)
		rs.resize = resize
		go func() {
			defer close(resize)
			dec := json.NewDecoder(s)
			for {
				var size containers.TerminalSize
				if err := dec.Decode(&size); err != nil {
					return
				}
				select {
				case resize <- size:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	exitCode, err := run(ctx, st.ID, rs)
	writeExecStatus(streams[corev1.StreamTypeError], protocol, cmd, exitCode, err)
	for _, s := range streams {
		s.Close()
	}
}

// writeExecStatus reports how the command ended on the error stream: a
// metav1.Status in v4, plain text before.
func writeExecStatus(s httpstream.Stream, protocol string, cmd []string, exitCode int, err error) {
	if s == nil {
		return
	}
	if protocol != remotecommand.StreamProtocolV4Name {
		switch {
		case err != nil:
			io.WriteString(s, err.Error())
		case exitCode != 0:
			fmt.Fprintf(s, "command terminated with non-zero exit code: exit status %d", exitCode)
		}
		return
	}
	st := metav1.Status{Status: metav1.StatusSuccess}
	switch {
	case err != nil:
		st = metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: err.Error()}
	case exitCode != 0:
		st = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: error executing command %v, exit code %d", cmd, exitCode),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exitCode)}}},
		}
	}
	json.NewEncoder(s).Encode(st)
}

// acceptStreams upgrades the connection to SPDY and waits for the client
// to open the wanted streams.
func acceptStreams(log *slog.Logger, w http.ResponseWriter, r *http.Request, want map[string]bool) (map[string]httpstream.Stream, httpstream.Connection, bool) {
	type created struct {
		s         httpstream.Stream
		replySent <-chan struct{}
	}
	ch := make(chan created, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		ch <- created{s, replySent}
		return nil
	})
	if conn == nil {
		return nil, nil, false
	}
	conn.SetIdleTimeout(4 * time.Hour)
	n := 0
	for _, ok := range want {
		if ok {
			n++
		}
	}
	streams := map[string]httpstream.Stream{}
	timeout := time.After(streamCreationTimeout)
	var replies []<-chan struct{}
	for len(streams) < n {
		select {
		case c := <-ch:
			typ := c.s.Headers().Get(corev1.StreamType)
			if !want[typ] {
				c.s.Reset()
				continue
			}
			streams[typ] = c.s
			replies = append(replies, c.replySent)
		case <-timeout:
			log.Debug("exec: timed out waiting for client streams")
			conn.Close()
			return nil, nil, false
		case <-conn.CloseChan():
			return nil, nil, false
		}
	}
	for _, rs := range replies {
		<-rs
	}
	return streams, conn, true
}

// servePortForward is /portForward/NAMESPACE/POD: upstream's SPDY
// port-forward protocol. Each forwarded connection is a pair of streams
// (error, data) with the same requestID; data is piped to the pod's
// address on the given port.
func (k *Kubelet) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	obj, exists, err := k.pods.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !exists {
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("pod %q not found", name))
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Status.PodIP == "" {
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("pod %s has no IP yet", name))
		return
	}
	// The pod's own localhost, as upstream's runtimes forward: servers
	// that listen only on 127.0.0.1 in the pod are reachable too.
	dial := func(ctx context.Context, port string) (net.Conn, error) {
		if pod.Spec.HostNetwork {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
		}
		return k.network.DialLocal(ctx, string(pod.UID), port)
	}
	if _, err := httpstream.Handshake(r, w, []string{portForwardProtocol}); err != nil {
		return
	}
	type pair struct {
		data, errs httpstream.Stream
	}
	var mu sync.Mutex
	pairs := map[string]*pair{}
	var wg sync.WaitGroup
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
		port := s.Headers().Get(corev1.PortHeader)
		mu.Lock()
		p := pairs[id]
		if p == nil {
			p = &pair{}
			pairs[id] = p
		}
		switch s.Headers().Get(corev1.StreamType) {
		case corev1.StreamTypeData:
			p.data = s
		case corev1.StreamTypeError:
			p.errs = s
		default:
			mu.Unlock()
			return fmt.Errorf("invalid stream type %q", s.Headers().Get(corev1.StreamType))
		}
		complete := p.data != nil && p.errs != nil
		if complete {
			delete(pairs, id)
		}
		mu.Unlock()
		if complete {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-replySent
				forward(r.Context(), pod, port, p.data, p.errs, dial)
			}()
		}
		return nil
	})
	if conn == nil {
		return
	}
	conn.SetIdleTimeout(4 * time.Hour)
	select {
	case <-conn.CloseChan():
	case <-r.Context().Done():
	}
	conn.Close()
	wg.Wait()
}

// forward pipes one port-forward connection to the pod's port.
func forward(ctx context.Context, pod *corev1.Pod, port string, data, errs httpstream.Stream, dial func(context.Context, string) (net.Conn, error)) {
	defer data.Close()
	defer errs.Close()
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		fmt.Fprintf(errs, "invalid port %q", port)
		return
	}
	c, err := dial(ctx, port)
	if err != nil {
		fmt.Fprintf(errs, "error forwarding port %s to pod %s, uid %s: %v", port, pod.Name, pod.UID, err)
		return
	}
	defer c.Close()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(c, data)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, err := io.Copy(data, c)
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "closed") {
			fmt.Fprintf(errs, "error copying from pod: %v", err)
		}
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
