package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// defaultKubeletPort is where a kubelet serves its API when its Node does
// not say otherwise.
const defaultKubeletPort = 10250

// kubeletPaths maps a pod subresource to the kubelet's URL for it.
var kubeletPaths = map[string]string{
	"log":         "containerLogs",
	"exec":        "exec",
	"attach":      "attach",
	"portforward": "portForward",
}

// servePodStream proxies pods/log, exec, attach and portforward to the
// kubelet of the pod's node, SPDY upgrades included.
//
// The kubelet speaks SPDY only. As upstream's API server does, WebSocket
// clients are translated: exec and attach over v5.channel.k8s.io become a
// SPDY session with the kubelet, and port-forward's SPDY tunnelled in
// WebSocket (SPDY/3.1+portforward.k8s.io) is unwrapped onto a SPDY
// upgrade to the kubelet. Other WebSocket protocols get 400, a non-101
// answer, which makes clients fall back to SPDY.
func (s *Server) servePodStream(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	if s.cfg.KubeletTransport == nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s is not available: no kubelet client configured", t.subresource))
	}
	if t.subresource == "log" && r.Method != http.MethodGet {
		return errMethodNotSupported(r)
	}
	translate := ""
	if isWebSocketUpgrade(r) {
		switch {
		case (t.subresource == "exec" || t.subresource == "attach") && offersWebSocketProtocol(r, remotecommand.StreamProtocolV5Name):
			translate = remotecommand.StreamProtocolV5Name
		case t.subresource == "portforward" && offersWebSocketProtocol(r, portForwardTunnelProtocol):
			translate = portForwardTunnelProtocol
		default:
			return apierrors.NewBadRequest(fmt.Sprintf("pods/%s: WebSocket streaming needs subprotocol %s, or use SPDY", t.subresource, map[bool]string{true: portForwardTunnelProtocol, false: remotecommand.StreamProtocolV5Name}[t.subresource == "portforward"]))
		}
	}
	obj, err := s.getStored(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	nodes, _ := s.resources.lookup(coreV1.WithResource("nodes"))
	nodeObj, err := s.getStored(r.Context(), nodes, "", pod.Spec.NodeName)
	if err != nil {
		return err
	}
	host, err := kubeletHost(nodeObj.(*corev1.Node))
	if err != nil {
		return err
	}
	path := "/" + kubeletPaths[t.subresource] + "/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name)
	query := r.URL.Query()
	if t.subresource != "portforward" {
		container, err := podContainer(pod, query.Get("container"))
		if err != nil {
			return err
		}
		path += "/" + url.PathEscape(container)
		query.Del("container")
	}
	if t.subresource == "exec" || t.subresource == "attach" {
		// The kubelet names the stream flags input/output/error.
		for from, to := range map[string]string{"stdin": "input", "stdout": "output", "stderr": "error"} {
			if v := query.Get(from); v != "" {
				query.Del(from)
				if v == "true" || v == "1" {
					query.Set(to, "1")
				}
			}
		}
		if v := query.Get("tty"); v == "true" {
			query.Set("tty", "1")
		}
	}
	target := &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query.Encode()}
	switch translate {
	case remotecommand.StreamProtocolV5Name:
		s.translateRemoteCommand(w, r, target, pod.Spec.NodeName)
		return nil
	case portForwardTunnelProtocol:
		return s.tunnelPortForward(w, r, target, pod.Spec.NodeName)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Authorization")
		},
		Transport:     s.cfg.KubeletTransport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error talking to the kubelet on node %s: %v", pod.Spec.NodeName, err)))
		},
	}
	proxy.ServeHTTP(w, r)
	return nil
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// portForwardTunnelProtocol is port-forward's SPDY carried in WebSocket
// binary messages (kubectl 1.30 and later).
const portForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io"

// offersWebSocketProtocol reports whether the client offers protocol in
// Sec-WebSocket-Protocol.
func offersWebSocketProtocol(r *http.Request, protocol string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if strings.TrimSpace(p) == protocol {
				return true
			}
		}
	}
	return false
}

// WebSocket channels of the remote command protocol, upstream's numbers.
const (
	channelStdin = iota
	channelStdout
	channelStderr
	channelError
	channelResize
	// channelClosed is no channel of the protocol: nothing arrives on it,
	// and its reader ends when the WebSocket connection does.
	channelClosed
)

// translateRemoteCommand serves exec or attach to a v5.channel.k8s.io
// WebSocket client through a SPDY session with the kubelet at target, as
// upstream's stream translator: the client's channels become SPDY streams,
// and how the command ended (success, NonZeroExitCode with its ExitCode
// cause, or the kubelet's error) is written as a Status on the error
// channel.
func (s *Server) translateRemoteCommand(w http.ResponseWriter, r *http.Request, target *url.URL, node string) {
	q := r.URL.Query()
	flag := func(name string) bool { v := q.Get(name); return v == "true" || v == "1" }
	stdinOn, stdoutOn, stderrOn, tty := flag("stdin"), flag("stdout"), flag("stderr"), flag("tty")
	channels := []wsstream.ChannelType{wsstream.ReadChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.ReadChannel, wsstream.ReadChannel}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(4 * time.Hour)
	_, streams, err := conn.Open(hijackable{w}, r)
	if err != nil {
		s.log.Debug("pods stream: WebSocket upgrade", "err", err)
		return
	}
	defer conn.Close()
	// A client that goes away ends the command on the kubelet too (the
	// hijacked request's context would not).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		io.Copy(io.Discard, streams[channelClosed])
		cancel()
	}()
	// An empty message on the lowest writable channel tells the client
	// the connection is up.
	switch {
	case stdoutOn:
		streams[channelStdout].Write(nil)
	case stderrOn:
		streams[channelStderr].Write(nil)
	default:
		streams[channelError].Write(nil)
	}
	opts := clientremotecommand.StreamOptions{Tty: tty}
	if stdinOn {
		opts.Stdin = streams[channelStdin]
	}
	if stdoutOn {
		opts.Stdout = streams[channelStdout]
	}
	if stderrOn && !tty {
		opts.Stderr = streams[channelStderr]
	}
	if tty {
		sizes := make(terminalSizes, 4)
		opts.TerminalSizeQueue = sizes
		go func() {
			defer close(sizes)
			dec := json.NewDecoder(streams[channelResize])
			for {
				var size clientremotecommand.TerminalSize
				if err := dec.Decode(&size); err != nil {
					return
				}
				select {
				case sizes <- size:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	status := metav1.Status{Status: metav1.StatusSuccess}
	ex, err := clientremotecommand.NewSPDYExecutorForTransports(spdyUpgrading{s.cfg.KubeletTransport}, kubeletUpgrader{}, http.MethodPost, target)
	if err == nil {
		err = ex.StreamWithContext(ctx, opts)
	}
	var statusErr *apierrors.StatusError
	var exitErr utilexec.CodeExitError
	switch {
	case err == nil:
	case errors.As(err, &statusErr):
		status = statusErr.ErrStatus
	case errors.As(err, &exitErr) && exitErr.Exited():
		status = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exitErr.ExitStatus())}}},
		}
	default:
		status = apierrors.NewInternalError(fmt.Errorf("error talking to the kubelet on node %s: %w", node, err)).ErrStatus
	}
	data, _ := json.Marshal(status)
	streams[channelError].Write(data)
}

// terminalSizes hands the SPDY executor the client's resize events.
type terminalSizes chan clientremotecommand.TerminalSize

func (q terminalSizes) Next() *clientremotecommand.TerminalSize {
	size, ok := <-q
	if !ok {
		return nil
	}
	return &size
}

// spdyUpgrading asks for a SPDY upgrade on every request it carries.
type spdyUpgrading struct{ http.RoundTripper }

func (t spdyUpgrading) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	resp, err := t.RoundTripper.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = upgradedBody{rwc}
		}
	}
	return resp, err
}

// upgradedBody is the connection of an upgraded response, kept open when
// client-go closes the response body after the upgrade: the SPDY
// connection built on it closes it.
type upgradedBody struct{ conn io.ReadWriteCloser }

func (b upgradedBody) Read(p []byte) (int, error)  { return b.conn.Read(p) }
func (b upgradedBody) Write(p []byte) (int, error) { return b.conn.Write(p) }
func (b upgradedBody) Close() error                { return nil }

// kubeletUpgrader makes the SPDY client connection of an upgrade answered
// through the kubelet transport, whose 101 response body is the raw
// connection. A refused upgrade becomes the kubelet's Status.
type kubeletUpgrader struct{}

func (kubeletUpgrader) NewConnection(resp *http.Response) (httpstream.Connection, error) {
	conn, err := upgradedConn(resp, "SPDY/3.1")
	if err != nil {
		return nil, err
	}
	return spdy.NewClientConnectionWithPings(conn, 5*time.Second)
}

// upgradedConn is the connection of a response that switched to protocol,
// or the error the response carries.
func upgradedConn(resp *http.Response, protocol string) (net.Conn, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), protocol) {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Status == metav1.StatusFailure {
			return nil, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, fmt.Errorf("unable to upgrade connection: %s", strings.TrimSpace(string(body)))
	}
	if b, ok := resp.Body.(upgradedBody); ok {
		return rwcConn{b.conn}, nil
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("unable to upgrade connection: the kubelet transport does not support upgrades")
	}
	return rwcConn{rwc}, nil
}

// rwcConn is an upgraded connection as a net.Conn: the SPDY library wants
// one, and deadlines are not needed here.
type rwcConn struct{ io.ReadWriteCloser }

func (rwcConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (rwcConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (rwcConn) SetDeadline(time.Time) error      { return nil }
func (rwcConn) SetReadDeadline(time.Time) error  { return nil }
func (rwcConn) SetWriteDeadline(time.Time) error { return nil }

// tunnelPortForward serves port-forward to a client that tunnels SPDY in
// WebSocket binary messages: it upgrades to SPDY with the kubelet at
// target first (so a refusal is an HTTP error the client can fall back
// from), then accepts the WebSocket and copies the bytes both ways.
func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, target *url.URL, node string) error {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	req.Header.Set("X-Stream-Protocol-Version", "portforward.k8s.io")
	resp, err := spdyUpgrading{s.cfg.KubeletTransport}.RoundTrip(req)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error talking to the kubelet on node %s: %v", node, err))
	}
	kubelet, err := upgradedConn(resp, "SPDY/3.1")
	if err != nil {
		var statusErr *apierrors.StatusError
		if errors.As(err, &statusErr) {
			return statusErr
		}
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error talking to the kubelet on node %s: %v", node, err))
	}
	defer kubelet.Close()
	websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			cfg.Protocol = []string{portForwardTunnelProtocol}
			return nil
		},
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			done := make(chan struct{}, 2)
			go func() {
				io.Copy(kubelet, ws)
				done <- struct{}{}
			}()
			go func() {
				io.Copy(ws, kubelet)
				done <- struct{}{}
			}()
			// Either side ending ends the tunnel.
			<-done
			kubelet.Close()
			ws.Close()
			<-done
		},
	}.ServeHTTP(hijackable{w}, r)
	return nil
}

// hijackable exposes the hijacking of a wrapped ResponseWriter to code
// that asserts http.Hijacker, as the WebSocket server does.
type hijackable struct{ http.ResponseWriter }

func (h hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// kubeletHost is host:port of a node's kubelet: its InternalIP (else
// ExternalIP, else Hostname) and its advertised kubelet port.
func kubeletHost(node *corev1.Node) (string, error) {
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = defaultKubeletPort
	}
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == typ && a.Address != "" {
				return joinHostPort(a.Address, port), nil
			}
		}
	}
	return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no address", node.Name))
}

// podContainer resolves the container a log/exec/attach request is for,
// with upstream's messages.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if name == "" {
		if len(names) == 1 {
			return names[0], nil
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " ")))
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}
