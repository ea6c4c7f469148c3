package apiserver

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// kubelet of the pod's node, upgrades (SPDY) included.
//
// WebSocket upgrades are refused with 400: the kubelet's streaming server
// speaks only SPDY (and WebSocket v4, which kubectl does not offer), and a
// non-101 answer is what makes kubectl and client-go fall back to SPDY.
func (s *Server) servePodStream(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	if s.cfg.KubeletTransport == nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s is not available: no kubelet client configured", t.subresource))
	}
	if t.subresource == "log" && r.Method != http.MethodGet {
		return errMethodNotSupported(r)
	}
	if isWebSocketUpgrade(r) {
		return apierrors.NewBadRequest(fmt.Sprintf("pods/%s: WebSocket streaming is not supported, use SPDY", t.subresource))
	}
	obj, err := s.getObject(r, t.res, t.namespace, t.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	nodes, _ := s.resources.lookup(coreV1.WithResource("nodes"))
	nodeObj, err := s.getObject(r, nodes, "", pod.Spec.NodeName)
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
