package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// listQuery is a parsed list or watch request.
type listQuery struct {
	opts   metav1.ListOptions
	labels labels.Selector
	fields fields.Selector
}

// parseListQuery reads ListOptions from the URL and checks them as
// upstream's ValidateListOptions does. The WatchList feature is served, so
// sendInitialEvents is accepted on watches.
func (s *Server) parseListQuery(r *http.Request, res *registry.Resource, watch bool) (listQuery, error) {
	var q listQuery
	values := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_ListOptions(&values, &q.opts, nil); err != nil {
		return q, apierrors.NewBadRequest(err.Error())
	}
	q.opts.Watch = watch
	if q.opts.Limit < 0 {
		// Upstream pages only with a positive limit; any other is no limit.
		q.opts.Limit = 0
	}
	var errs field.ErrorList
	match := q.opts.ResourceVersionMatch
	if watch {
		if q.opts.SendInitialEvents != nil && match != metav1.ResourceVersionMatchNotOlderThan {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"),
				fmt.Sprintf("sendInitialEvents requires setting resourceVersionMatch to %s", metav1.ResourceVersionMatchNotOlderThan)))
		}
		if match != "" {
			if q.opts.SendInitialEvents == nil {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
			}
			if match != metav1.ResourceVersionMatchNotOlderThan {
				errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), match, []string{string(metav1.ResourceVersionMatchNotOlderThan)}))
			}
			if q.opts.Continue != "" {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
			}
		}
	} else {
		if match != "" {
			if q.opts.ResourceVersion == "" {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
			}
			if q.opts.Continue != "" {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
			}
			if match != metav1.ResourceVersionMatchExact && match != metav1.ResourceVersionMatchNotOlderThan {
				errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), match,
					[]string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan), ""}))
			}
			if match == metav1.ResourceVersionMatchExact && q.opts.ResourceVersion == "0" {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
			}
		}
		if q.opts.SendInitialEvents != nil {
			errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
		}
	}
	if len(errs) > 0 {
		return q, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
	}
	if _, err := parseResourceVersion(q.opts.ResourceVersion); err != nil {
		return q, err
	}
	var err error
	if q.labels, err = labels.Parse(q.opts.LabelSelector); err != nil {
		return q, apierrors.NewBadRequest(err.Error())
	}
	if q.fields, err = fields.ParseSelector(q.opts.FieldSelector); err != nil {
		return q, apierrors.NewBadRequest(err.Error())
	}
	supported := s.selectableFields(res, nil)
	for _, req := range q.fields.Requirements() {
		if !supported.Has(req.Field) {
			return q, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return q, nil
}

// selectableFields returns the fields a field selector may use on obj; for
// a nil obj only the keys matter.
func (s *Server) selectableFields(res *registry.Resource, obj runtime.Object) fields.Set {
	set := fields.Set{}
	if obj == nil {
		zero, err := s.newObject(res)
		if err != nil {
			return fields.Set{"metadata.name": "", "metadata.namespace": ""}
		}
		obj = zero
	}
	m := accessor(obj)
	set["metadata.name"] = m.GetName()
	if res.Namespaced {
		set["metadata.namespace"] = m.GetNamespace()
	} else {
		set["metadata.namespace"] = ""
	}
	if res.SelectableFields != nil {
		for k, v := range res.SelectableFields(obj) {
			set[k] = v
		}
	}
	return set
}

// matches reports whether obj passes the query's selectors.
func (s *Server) matches(q listQuery, res *registry.Resource, obj runtime.Object) bool {
	if !q.labels.Empty() && !q.labels.Matches(labels.Set(accessor(obj).GetLabels())) {
		return false
	}
	if !q.fields.Empty() && !q.fields.Matches(s.selectableFields(res, obj)) {
		return false
	}
	return true
}

// filtering reports whether the query filters at all.
func (q listQuery) filtering() bool { return !q.labels.Empty() || !q.fields.Empty() }

func errTooLargeResourceVersion(asked, current int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", asked, current), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type:    metav1.CauseTypeResourceVersionTooLarge,
		Message: "Too large resource version",
	}}
	return err
}
