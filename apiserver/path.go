package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
)

// requestPath is the one reading of a request's URL path. Routing, the
// resource handlers and authorization all use it, so what is authorized
// is what is served. For a resource request it holds what the path names,
// read from the path alone as upstream's RequestInfo does, so paths the
// server does not serve are judged the same way as those it does.
type requestPath struct {
	// resourceRequest is true for /api/<version>/<...> and
	// /apis/<group>/<version>/<...>; the fields below are only set then.
	resourceRequest bool
	group, version  string
	// watchPrefix marks the deprecated /watch/ prefix before the resource.
	watchPrefix bool
	// scoped marks the namespaces/<namespace>/ prefix before the
	// resource; a namespace's own path (namespaces/<name>[/status]) sets
	// namespace but not scoped.
	scoped      bool
	namespace   string
	resource    string
	name        string
	subresource string
}

// namespaceSubresources are the subresources of a namespace, which
// /api/v1/namespaces/<name>/<subresource> names (any other word there is
// a namespaced resource).
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// parsePath reads a request's URL path. It refuses any path that routing
// and authorization could read differently, before anything is
// authorized or served:
//   - an encoded slash (%2F): net/http decodes it in URL.Path, so it
//     would be a separator to one reader and part of a segment to another
//     (404; upstream decodes it and finds no route for the longer path);
//   - an empty segment (//): 404, as upstream answers //version or
//     /api/v1//secrets (only one trailing slash is tolerated);
//   - "." or ".." segments, which HTTP clients resolve but net/http does
//     not: as a name or namespace 400 with upstream's "Name parameter
//     invalid" (its storage key check, path.IsValidPathSegmentName, which
//     also refuses "%" and "/" in names), anywhere else 404;
//   - segments after a resource's subresource: no route serves them (404).
func parsePath(u *url.URL) (requestPath, error) {
	if strings.Contains(strings.ToLower(u.RawPath), "%2f") || !strings.HasPrefix(u.Path, "/") {
		return requestPath{}, errNotFoundPath(nil)
	}
	trimmed := strings.TrimSuffix(u.Path[1:], "/")
	if trimmed == "" {
		return requestPath{}, nil
	}
	segs := strings.Split(trimmed, "/")
	for _, seg := range segs {
		if seg == "" {
			return requestPath{}, errNotFoundPath(nil)
		}
	}
	var p requestPath
	var rest []string
	switch {
	case len(segs) >= 3 && segs[0] == "api":
		p.version, rest = segs[1], segs[2:]
	case len(segs) >= 4 && segs[0] == "apis":
		p.group, p.version, rest = segs[1], segs[2], segs[3:]
	default:
		return p, refuseDotSegments(segs)
	}
	p.resourceRequest = true
	if rest[0] == "watch" && len(rest) > 1 {
		p.watchPrefix, rest = true, rest[1:]
	}
	if rest[0] == "namespaces" && len(rest) > 1 {
		p.namespace = rest[1]
		if len(rest) > 2 && !namespaceSubresources[rest[2]] {
			p.scoped, rest = true, rest[2:]
		}
	}
	if len(rest) > 3 {
		return requestPath{}, errNotFoundPath(nil)
	}
	p.resource = rest[0]
	if len(rest) > 1 {
		p.name = rest[1]
	}
	if len(rest) > 2 {
		p.subresource = rest[2]
	}
	if err := refuseDotSegments([]string{p.group, p.version, p.resource, p.subresource}); err != nil {
		return requestPath{}, err
	}
	if err := validPathName("Name", p.name); err != nil {
		return requestPath{}, err
	}
	if err := validPathName("Namespace", p.namespace); err != nil {
		return requestPath{}, err
	}
	return p, nil
}

// refuseDotSegments answers 404 for a path with a "." or ".." segment.
func refuseDotSegments(segs []string) error {
	for _, seg := range segs {
		if seg == "." || seg == ".." {
			return errNotFoundPath(nil)
		}
	}
	return nil
}

// validPathName is upstream's check of a name (or namespace) from the
// path before it becomes part of a storage key.
func validPathName(what, name string) error {
	if name == "" {
		return nil
	}
	if msgs := path.IsValidPathSegmentName(name); len(msgs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("%s parameter invalid: %q: %s", what, name, strings.Join(msgs, ";")))
	}
	return nil
}

// pathKey is the context key of the request's requestPath.
type pathKey struct{}

// pathFrom returns the request's parsed path; withCanonicalPath put it
// there.
func pathFrom(ctx context.Context) (requestPath, bool) {
	p, ok := ctx.Value(pathKey{}).(requestPath)
	return p, ok
}

// withCanonicalPath parses every request's path once, refuses the ones
// parsePath refuses and hands the result to authorization and the
// handlers. The router (chi) matches on URL.RawPath when it is set, where
// everything else reads the decoded URL.Path; once encoded slashes are
// refused the two name the same segments, so RawPath is dropped and chi
// routes on the decoded path too.
func (s *Server) withCanonicalPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := parsePath(r.URL)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), pathKey{}, p))
		u := *r.URL
		u.RawPath = ""
		r.URL = &u
		next.ServeHTTP(w, r)
	})
}
