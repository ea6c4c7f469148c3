package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// objectLookup answers the authenticator's question "does this object
// still exist, and with which UID" for service account tokens, by asking
// the REST core in-process: a GET through its handler, with no network
// and no authentication in between.
type objectLookup struct {
	// handler is the REST core's; set once, before the server serves.
	handler http.Handler
}

// lookupUser is who the lookups run as, upstream's name for the API
// server calling itself.
func lookupUser() authn.User {
	return authn.User{Name: "system:apiserver", Groups: []string{pki.AdminGroup}}
}

func (l *objectLookup) lookup(ctx context.Context, namespace, resource, name string) (string, error) {
	if l.handler == nil {
		return "", errors.New("the API is not serving yet")
	}
	path := "/api/v1/" + resource + "/" + url.PathEscape(name)
	if namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(namespace) + "/" + resource + "/" + url.PathEscape(name)
	}
	req, err := http.NewRequestWithContext(authn.WithUser(ctx, lookupUser()), http.MethodGet, path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	w := &recorder{header: http.Header{}, code: http.StatusOK}
	l.handler.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		return "", fmt.Errorf("%s %s/%s: %d", resource, namespace, name, w.code)
	}
	var obj struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &obj); err != nil {
		return "", err
	}
	return obj.Metadata.UID, nil
}

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
