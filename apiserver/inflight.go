package apiserver

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
)

// Upstream's defaults of --max-requests-inflight and
// --max-mutating-requests-inflight.
const (
	defaultMaxRequestsInFlight         = 400
	defaultMaxMutatingRequestsInFlight = 200
)

// tooManyRequestsMessage and tooManyRequestsRetryAfter are what upstream's
// in-flight filter answers with.
const (
	tooManyRequestsMessage    = "Too many requests, please try again later."
	tooManyRequestsRetryAfter = 1
)

// userAPIServer is the identity of the server's own in-process clients.
const userAPIServer = "system:apiserver"

// inFlight caps the requests being served at once, as upstream's
// max-in-flight filter does, with one pool for read-only requests (get,
// list) and one for mutating ones; a request that finds its pool full is
// answered 429 at once. On top of that each user may hold at most half of
// a pool, a simple form of API Priority and Fairness: one busy client
// cannot take every seat from the others. Long-running requests and the
// system's own components are not counted (see isSystem).
type inFlight struct {
	readOnly, mutating *seatPool
}

// seatPool is one pool of seats. A nil pool has no limit.
type seatPool struct {
	mu      sync.Mutex
	limit   int
	perUser int
	used    int
	byUser  map[string]int
}

// newSeatPool returns a pool of limit seats; limit < 0 means none (nil).
func newSeatPool(limit int) *seatPool {
	if limit < 0 {
		return nil
	}
	return &seatPool{limit: limit, perUser: max(1, limit/2), byUser: map[string]int{}}
}

// acquire takes a seat for user; false when the pool or the user's share
// is full.
func (p *seatPool) acquire(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used >= p.limit || p.byUser[user] >= p.perUser {
		return false
	}
	p.used++
	p.byUser[user]++
	return true
}

func (p *seatPool) release(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used--
	if p.byUser[user]--; p.byUser[user] == 0 {
		delete(p.byUser, user)
	}
}

func newInFlight(maxReadOnly, maxMutating int) *inFlight {
	return &inFlight{readOnly: newSeatPool(maxReadOnly), mutating: newSeatPool(maxMutating)}
}

// inFlightLimit takes 0 as default and a negative value as no limit.
func inFlightLimit(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// limit is the filter: it runs after authentication (it needs the user)
// and before authorization, as upstream's.
func (l *inFlight) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := authn.UserFrom(r.Context())
		if !ok || isSystem(user) {
			next.ServeHTTP(w, r)
			return
		}
		p, _ := pathFrom(r.Context())
		a := requestAttributes(r, p, user)
		if isLongRunning(r, p) || isProbe(a) {
			next.ServeHTTP(w, r)
			return
		}
		pool := l.readOnly
		if isMutating(a.Verb) {
			pool = l.mutating
		}
		if pool == nil {
			next.ServeHTTP(w, r)
			return
		}
		if !pool.acquire(user.Name) {
			writeTooManyRequests(w)
			return
		}
		defer pool.release(user.Name)
		next.ServeHTTP(w, r)
	})
}

// isSystem says whose requests are never limited: members of
// system:masters (upstream's exempt priority level), and the system's own
// components, so that no user can starve them: kubelets (system:nodes),
// the controller manager, the scheduler and the server's loopback client.
// Requests that did not go through an authenticator (the library used
// without one, in-process calls) are not limited by the filter either.
func isSystem(u authn.User) bool {
	switch u.Name {
	case userControllers, userScheduler, userAPIServer:
		return true
	}
	return slices.Contains(u.Groups, privilegedGroup) || slices.Contains(u.Groups, authz.NodesGroup)
}

// isProbe: health checks are exempt, as upstream's probes flow schema
// makes them.
func isProbe(a authz.Attributes) bool {
	if a.ResourceRequest {
		return false
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if a.Path == p || strings.HasPrefix(a.Path, p+"/") {
			return true
		}
	}
	return false
}

// isMutating: everything but get, list and watch (and HEAD) takes a
// mutating seat, as upstream counts.
func isMutating(verb string) bool {
	switch verb {
	case "get", "list", "watch", "head":
		return false
	}
	return true
}

// writeTooManyRequests answers 429 with a Retry-After header and a Status
// carrying upstream's message.
func writeTooManyRequests(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(tooManyRequestsRetryAfter))
	status := apierrors.NewTooManyRequests(tooManyRequestsMessage, tooManyRequestsRetryAfter).ErrStatus
	status.Status = metav1.StatusFailure
	writeStatus(w, status)
}
