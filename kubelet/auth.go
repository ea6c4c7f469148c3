package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Authorizer decides whether a caller of the kubelet API may do what it
// asks, as upstream's kubelet asks its authorizer.
type Authorizer interface {
	// Authorize answers one question in SubjectAccessReview terms. An
	// error means no answer (the caller gets 500, as upstream's kubelet
	// answers), not a denial. It may be called concurrently.
	Authorize(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error)
}

// Upstream's kubelet defaults for --authorization-webhook-cache-authorized-ttl
// and --authorization-webhook-cache-unauthorized-ttl.
const (
	DefaultAuthorizedTTL   = 5 * time.Minute
	DefaultUnauthorizedTTL = 30 * time.Second
)

// maxCachedDecisions bounds the decision cache; past it, expired
// decisions are dropped, and if none are, all are.
const maxCachedDecisions = 8192

// WebhookAuthorizerConfig configures NewWebhookAuthorizer.
type WebhookAuthorizerConfig struct {
	// Client creates the SubjectAccessReviews: the kubelet's own
	// clientset (system:node:NAME, which system:node lets create them).
	Client kubernetes.Interface
	// AuthorizedTTL and UnauthorizedTTL are how long an allow and a
	// denial are reused; defaults DefaultAuthorizedTTL and
	// DefaultUnauthorizedTTL.
	AuthorizedTTL   time.Duration
	UnauthorizedTTL time.Duration
	// Clock is for tests; default the real clock.
	Clock clock.PassiveClock
}

// NewWebhookAuthorizer returns upstream's kubelet authorizer with
// --authorization-mode=Webhook: each question is a SubjectAccessReview
// created on the API server, and its answer is cached.
func NewWebhookAuthorizer(cfg WebhookAuthorizerConfig) (Authorizer, error) {
	if cfg.Client == nil {
		return nil, errors.New("kubelet: WebhookAuthorizerConfig.Client is required")
	}
	if cfg.AuthorizedTTL <= 0 {
		cfg.AuthorizedTTL = DefaultAuthorizedTTL
	}
	if cfg.UnauthorizedTTL <= 0 {
		cfg.UnauthorizedTTL = DefaultUnauthorizedTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &webhookAuthorizer{cfg: cfg, decisions: map[string]cachedDecision{}}, nil
}

type webhookAuthorizer struct {
	cfg WebhookAuthorizerConfig

	mu        sync.Mutex
	decisions map[string]cachedDecision // by the spec's JSON
}

type cachedDecision struct {
	status  authorizationv1.SubjectAccessReviewStatus
	expires time.Time
}

func (w *webhookAuthorizer) Authorize(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
	keyJSON, err := json.Marshal(spec)
	if err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	key := string(keyJSON)
	now := w.cfg.Clock.Now()
	w.mu.Lock()
	d, ok := w.decisions[key]
	w.mu.Unlock()
	if ok && now.Before(d.expires) {
		return d.status, nil
	}
	review, err := w.cfg.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx,
		&authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	ttl := w.cfg.UnauthorizedTTL
	if review.Status.Allowed {
		ttl = w.cfg.AuthorizedTTL
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.decisions) >= maxCachedDecisions {
		for k, d := range w.decisions {
			if !now.Before(d.expires) {
				delete(w.decisions, k)
			}
		}
		if len(w.decisions) >= maxCachedDecisions {
			clear(w.decisions)
		}
	}
	w.decisions[key] = cachedDecision{status: review.Status, expires: now.Add(ttl)}
	return review.Status, nil
}

// groupAuthenticated is what upstream's authenticators add to every
// authenticated user.
const groupAuthenticated = "system:authenticated"

// apiUser is the caller of the kubelet API, as upstream's x509
// authenticator names it: the certificate's common name, its
// organizations as groups, and system:authenticated.
func apiUser(r *http.Request) (name string, groups []string, ok bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", nil, false
	}
	subj := r.TLS.PeerCertificates[0].Subject
	if subj.CommonName == "" {
		return "", nil, false
	}
	groups = slices.Clone(subj.Organization)
	if !slices.Contains(groups, groupAuthenticated) {
		groups = append(groups, groupAuthenticated)
	}
	return subj.CommonName, groups, true
}

// apiVerb is the API verb of an HTTP method, as upstream's kubelet maps
// it. A WebSocket handshake is a GET, so it asks for get: upstream's
// kubelet does the same (only the API server asks for create as well).
func apiVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// nodeSubresources are the subresources of nodes a request to path
// asks for, in the order they are tried, as upstream's kubelet (with
// KubeletFineGrainedAuthz) builds them: /pods, /healthz and /configz try
// their own and then proxy; /stats, /metrics, /logs and /checkpoint have
// only their own; everything else (containerLogs, exec, attach,
// portForward) is proxy.
func nodeSubresources(path string) []string {
	switch {
	case isSubpath(path, "/pods"):
		return []string{"pods", "proxy"}
	case isSubpath(path, "/healthz"):
		return []string{"healthz", "proxy"}
	case isSubpath(path, "/configz"):
		return []string{"configz", "proxy"}
	case isSubpath(path, "/stats"):
		return []string{"stats"}
	case isSubpath(path, "/metrics"):
		return []string{"metrics"}
	case isSubpath(path, "/logs"):
		return []string{"log"}
	case isSubpath(path, "/checkpoint"):
		return []string{"checkpoint"}
	}
	return []string{"proxy"}
}

// isSubpath says whether path is root or below it.
func isSubpath(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// authorize lets through the requests whose caller the Authorizer allows
// one of the request's node subresources, and answers the others as
// upstream's kubelet does: 401 without a client certificate, 403 with
// "Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[...])",
// 500 when the authorizer could not answer.
func (k *Kubelet) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, groups, ok := apiUser(r)
		if !ok {
			writeText(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		verb := apiVerb(r.Method)
		subresources := nodeSubresources(r.URL.Path)
		for _, sub := range subresources {
			status, err := k.cfg.Authorizer.Authorize(r.Context(), authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: verb, Version: "v1", Resource: "nodes", Subresource: sub, Name: k.cfg.NodeName,
				},
			})
			if err != nil {
				k.log.Error("kubelet API: authorizing", "user", user, "verb", verb, "resource", "nodes/"+sub, "err", err)
				writeText(w, http.StatusInternalServerError,
					fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=nodes, subresource=%s)", user, verb, sub))
				return
			}
			if status.Allowed {
				next.ServeHTTP(w, r)
				return
			}
		}
		k.log.Debug("kubelet API: forbidden", "user", user, "verb", verb, "subresources", subresources)
		writeText(w, http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource(s)=%v)\n", user, verb, subresources))
	})
}

// writeText answers with a plain-text body, as upstream's kubelet
// writes its authorization errors.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(msg))
}
