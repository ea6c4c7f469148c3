package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// apiserverUser is who the server's own in-process requests run as,
// upstream's name for the API server calling itself.
func apiserverUser() authn.User {
	return authn.User{Name: "system:apiserver", Groups: []string{pki.AdminGroup}}
}

// inProcessConfig is a client configuration whose requests the REST core
// answers directly, as the API server calling itself: no network, no
// authentication. It serves single requests, not watches. handler is read
// at each request, so it may be set after the client is made.
func inProcessConfig(handler func() http.Handler) *rest.Config {
	return &rest.Config{
		Host:      "http://in-process",
		UserAgent: "tinykube/apiserver",
		Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			h := handler()
			if h == nil {
				return nil, fmt.Errorf("%s %s: the API is not serving yet", req.Method, req.URL.Path)
			}
			w := &recorder{header: http.Header{}, code: http.StatusOK}
			h.ServeHTTP(w, req.WithContext(authn.WithUser(req.Context(), apiserverUser())))
			return &http.Response{
				StatusCode: w.code, Status: http.StatusText(w.code), Header: w.header,
				Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()), Request: req,
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			}, nil
		}),
	}
}

// inProcessClient is a clientset on inProcessConfig of core.
func inProcessClient(core http.Handler) kubernetes.Interface {
	// Only fails on a malformed config, and this one is fixed.
	return kubernetes.NewForConfigOrDie(inProcessConfig(func() http.Handler { return core }))
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// recorder is the smallest http.ResponseWriter that keeps the answer.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

// objectLookup answers the authenticator's question "does this object
// still exist, and with which UID" for service account tokens, by asking
// the REST core in-process.
type objectLookup struct {
	// handler is the REST core's; set once, before the server serves.
	handler http.Handler
	client  dynamic.Interface
}

func newObjectLookup() *objectLookup {
	l := &objectLookup{}
	// Only fails on a malformed config, and this one is fixed.
	l.client = dynamic.NewForConfigOrDie(inProcessConfig(func() http.Handler { return l.handler }))
	return l
}

func (l *objectLookup) lookup(ctx context.Context, namespace, resource, name string) (string, error) {
	var obj *unstructured.Unstructured
	var err error
	gvr := schema.GroupVersionResource{Version: "v1", Resource: resource}
	if namespace != "" {
		obj, err = l.client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	} else {
		obj, err = l.client.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("%s %s/%s: %w", resource, namespace, name, err)
	}
	return string(obj.GetUID()), nil
}
