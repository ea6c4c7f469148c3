package kubelet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/logs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serve runs the kubelet's HTTPS API until ctx ends. Only clients with a
// certificate from ClientCAs get in, and only to what Config.Authorizer
// allows them (auth.go).
func (k *Kubelet) serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           k.authorize(k.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{*k.cfg.ServingCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    k.cfg.ClientCAs,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		ErrorLog: nil,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler is the kubelet API without TLS and authorization, for tests and
// for wrapping.
func (k *Kubelet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveLogs)
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", k.serveExec)
	mux.HandleFunc("/attach/{namespace}/{pod}/{container}", k.serveAttach)
	mux.HandleFunc("/portForward/{namespace}/{pod}", k.servePortForward)
	return mux
}

// serveLogs is GET /containerLogs/NAMESPACE/POD/CONTAINER with
// PodLogOptions' query parameters.
func (k *Kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	obj, exists, err := k.pods.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !exists {
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("pod %q not found", name))
		return
	}
	pod := obj.(*corev1.Pod)
	if !podHasContainer(pod, container) {
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("container %s is not valid for pod %s", container, name))
		return
	}
	q := r.URL.Query()
	opts := logs.Options{TailLines: -1, Follow: boolParam(q.Get("follow")), Timestamps: boolParam(q.Get("timestamps"))}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeStatus(w, http.StatusBadRequest, "tailLines must be a non-negative integer")
			return
		}
		opts.TailLines = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeStatus(w, http.StatusBadRequest, "limitBytes must be a positive integer")
			return
		}
		opts.LimitBytes = n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeStatus(w, http.StatusBadRequest, "sinceSeconds must be a positive integer")
			return
		}
		opts.Since = k.clock.Now().Add(-time.Duration(n) * time.Second)
	} else if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "sinceTime must be an RFC 3339 time")
			return
		}
		opts.Since = t
	}

	all, err := k.runtime.ListPod(r.Context(), string(pod.UID))
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, err.Error())
		return
	}
	var attempts []containers.Status
	for _, c := range all {
		if c.Name == container {
			attempts = append(attempts, c)
		}
	}
	sort.Slice(attempts, func(i, j int) bool { return attempts[i].Attempt > attempts[j].Attempt })
	var target containers.Status
	switch {
	case boolParam(q.Get("previous")):
		if len(attempts) < 2 {
			writeStatus(w, http.StatusBadRequest, fmt.Sprintf("previous terminated container %q in pod %q not found", container, name))
			return
		}
		target = attempts[1]
		opts.Follow = false
	case len(attempts) == 0:
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, name))
		return
	default:
		target = attempts[0]
	}
	if target.State != containers.StateRunning {
		opts.Follow = false
	}
	opts.Done = func() bool {
		cs, err := k.runtime.ListPod(context.WithoutCancel(r.Context()), string(pod.UID))
		if err != nil {
			return true
		}
		for _, c := range cs {
			if c.ID == target.ID {
				return c.State != containers.StateRunning
			}
		}
		return true
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	if err := logs.Read(r.Context(), target.LogPath, flushWriter{w}, opts); err != nil {
		k.log.Debug("serving logs", "pod", ns+"/"+name, "container", container, "err", err)
	}
}

func podHasContainer(pod *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

func boolParam(v string) bool { return v == "true" || v == "1" }

// flushWriter flushes after every write so followed logs arrive as they
// are written.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// writeStatus answers with a metav1.Status, which the API server passes on
// and clients print as upstream's messages ("Error from server
// (BadRequest): ...").
func writeStatus(w http.ResponseWriter, code int, msg string) {
	reason := metav1.StatusReasonBadRequest
	switch code {
	case http.StatusNotFound:
		reason = metav1.StatusReasonNotFound
	case http.StatusInternalServerError:
		reason = metav1.StatusReasonInternalError
	}
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(st)
}
