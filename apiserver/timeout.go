package apiserver

import (
	"context"
	"errors"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// defaultRequestTimeout is upstream's --request-timeout.
const defaultRequestTimeout = 60 * time.Second

// bodyCutDelay is how long after the timeout the connection's read
// deadline falls: the timeout answers first (a handler still reading the
// body has not begun its answer), then the blocked read fails and the
// connection is closed.
const bodyCutDelay = 250 * time.Millisecond

// longRunningSubresources are the subresources upstream's
// BasicLongRunningRequestCheck lets run past the request timeout.
var longRunningSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true, "log": true, "proxy": true}

// isLongRunning reports whether a request may outlive the request
// timeout: watches and pod streams, as upstream.
func isLongRunning(r *http.Request, p requestPath) bool {
	return p.resourceRequest && (p.watchPrefix || isWatch(r) || longRunningSubresources[p.subresource])
}

// errRequestTimeout is upstream's answer to a request that outlived the
// timeout: 504 "Timeout: request did not complete within the allotted
// timeout", reason Timeout.
func errRequestTimeout() *apierrors.StatusError {
	return apierrors.NewTimeoutError("request did not complete within the allotted timeout", 0)
}

// isBodyReadTimeout reports whether reading the body failed because the
// request's read deadline (set by withRequestTimeout) passed.
func isBodyReadTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// withRequestTimeout gives every request that is not long-running the
// request timeout, as upstream's WithTimeoutForNonLongRunningRequests: its
// context ends then and, unless the handler has begun its answer, the
// client gets the 504 at once (after that the connection is cut, the only
// way left to tell the client). The connection's read deadline is set just
// after (bodyCutDelay), so a client that sends its headers and then
// dribbles or stalls the body gets the 504 and then loses the connection.
func (s *Server) withRequestTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := pathFrom(r.Context())
		if isLongRunning(r, p) {
			next.ServeHTTP(w, r)
			return
		}
		deadline := time.Now().Add(s.cfg.RequestTimeout)
		// Not every ResponseWriter has a connection (httptest's recorder):
		// then only the context ends.
		_ = http.NewResponseController(w).SetReadDeadline(deadline.Add(bodyCutDelay))
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		tw := &timeoutWriter{w: w, header: http.Header{}}
		done := make(chan any, 1)
		r = r.Clone(ctx)
		go func() {
			defer func() {
				v := recover()
				if v != nil && v != http.ErrAbortHandler {
					// The stack is this goroutine's: log it before the
					// panic moves to the request's goroutine.
					s.log.Error("handler panicked", "method", r.Method, "uri", r.RequestURI, "panic", v, "stack", string(debug.Stack()))
				}
				done <- v
			}()
			next.ServeHTTP(tw, r)
		}()
		select {
		case v := <-done:
			if v != nil {
				panic(v)
			}
		case <-ctx.Done():
			if !tw.timeOut(errRequestTimeout()) {
				panic(http.ErrAbortHandler)
			}
		}
	})
}

// timeoutWriter is the handler's ResponseWriter under a timeout: once the
// timeout has answered, the handler's writes fail and never reach the
// connection.
type timeoutWriter struct {
	w http.ResponseWriter

	mu          sync.Mutex
	header      http.Header // the handler's, copied to w on WriteHeader
	wroteHeader bool
	timedOut    bool
}

func (tw *timeoutWriter) Header() http.Header { return tw.header }

func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.writeHeaderLocked(code)
}

func (tw *timeoutWriter) writeHeaderLocked(code int) {
	if tw.timedOut || tw.wroteHeader {
		return
	}
	tw.wroteHeader = true
	for k, v := range tw.header {
		tw.w.Header()[k] = v
	}
	tw.w.WriteHeader(code)
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		return 0, http.ErrHandlerTimeout
	}
	tw.writeHeaderLocked(http.StatusOK)
	return tw.w.Write(b)
}

// Flush passes a flush on unless the timeout has answered.
func (tw *timeoutWriter) Flush() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if !tw.timedOut {
		_ = http.NewResponseController(tw.w).Flush()
	}
}

// timeOut answers err unless the handler has begun its answer; it
// reports whether it did.
func (tw *timeoutWriter) timeOut(err *apierrors.StatusError) bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.timedOut = true
	if tw.wroteHeader {
		return false
	}
	writeStatus(tw.w, err.ErrStatus)
	return true
}
