package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// writeError is the one place where an error becomes a metav1.Status on the
// wire.
// A server-side failure (5xx) is logged too, as upstream does: the client
// sees the Status, the operator the cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(err)
	if status.Code >= http.StatusInternalServerError || status.Code == 0 {
		s.log.Error("request failed", "verb", r.Method, "path", r.URL.Path, "code", status.Code, "err", err)
	}
	writeStatus(w, status)
}

func writeStatus(w http.ResponseWriter, status metav1.Status) {
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, _ := json.Marshal(status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	code := int(status.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// statusFor converts any error to the Status upstream would send.
func statusFor(err error) metav1.Status {
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		st := apiStatus.Status()
		if st.Status == "" {
			st.Status = metav1.StatusFailure
		}
		return st
	}
	// Storage errors that escaped translation still get their meaning.
	switch {
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired(err.Error()).ErrStatus
	case errors.Is(err, storage.ErrValueTooLarge):
		return apierrors.NewRequestEntityTooLargeError(err.Error()).ErrStatus
	}
	return apierrors.NewInternalError(err).ErrStatus
}

func errNotFoundPath(r *http.Request) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{},
	}}
}

// errObjectTooLarge is the 413 of an object over the store's limit for
// one value.
func errObjectTooLarge() error {
	return apierrors.NewRequestEntityTooLargeError("limit is 1.5 MiB per object")
}

func errMethodNotSupported(r *http.Request) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{}, r.Method)
}

// fromStorage translates a storage sentinel into the API error upstream
// returns for the same situation on resource res / name.
func fromStorage(err error, res *registry.Resource, name string) error {
	gr := res.GroupResource()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrAlreadyExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(errObjectModified))
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %v", err))
	case errors.Is(err, storage.ErrFutureRevision):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, storage.ErrValueTooLarge):
		return errObjectTooLarge()
	case errors.Is(err, storage.ErrInvalidContinue):
		return apierrors.NewBadRequest("continue key is not valid: " + err.Error())
	}
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		return err
	}
	return apierrors.NewInternalError(err)
}

// errNamespaceTerminating is the 403 upstream's NamespaceLifecycle
// admission answers a create in a namespace being deleted with, including
// its NamespaceTerminating cause, which clients such as the namespace
// controllers of operators look for. name is "" when the object has
// neither a name nor a generateName.
func errNamespaceTerminating(gr schema.GroupResource, name, namespace string) error {
	if name == "" {
		name = "Unknown"
	}
	err := apierrors.NewForbidden(gr, name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    corev1.NamespaceTerminatingCause,
		Message: fmt.Sprintf("namespace %s is being terminated", namespace),
		Field:   "metadata.namespace",
	})
	return err
}

// errObjectModified is upstream's optimistic-concurrency message.
const errObjectModified = "the object has been modified; please apply your changes to the latest version and try again"
