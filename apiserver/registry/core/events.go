package core

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

// Upstream's length limits for events (pkg/apis/core/validation/events.go).
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
	eventReasonLimit            = 128
	eventNoteLimit              = 1024
)

// coreEventNameValidation: core/v1 Events get no name rules of their own
// upstream, only the generic ones of every object's path segment, so old
// clients' names such as "pod.Name_1" keep working.
var coreEventNameValidation = path.ValidatePathSegmentName

// validateCoreEvent is upstream's event validation for requests through
// core/v1: only the legacy rules, for compatibility with old clients.
func validateCoreEvent(obj, _ runtime.Object) field.ErrorList {
	return LegacyValidateEvent(obj.(*corev1.Event), "reportingComponent")
}

// LegacyValidateEvent: events without eventTime (the old API) need only a
// matching namespace; events with eventTime need who reported what.
// reportingControllerField is how the request's API version names
// reportingController.
func LegacyValidateEvent(ev *corev1.Event, reportingControllerField string) field.ErrorList {
	var errs field.ErrorList
	involvedNamespace := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ev.InvolvedObject.Namespace == "" {
			// Old clients send cluster-scoped objects' events to "default".
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(involvedNamespace, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(involvedNamespace, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(involvedNamespace, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if ev.ReportingController == "" {
			errs = append(errs, field.Required(field.NewPath(reportingControllerField), ""))
		}
		errs = append(errs, fieldvalidation.QualifiedName(ev.ReportingController, field.NewPath(reportingControllerField))...)
		errs = append(errs, requiredWithLimit(ev.ReportingInstance, "reportingInstance", eventReportingInstanceLimit)...)
		errs = append(errs, requiredWithLimit(ev.Action, "action", eventActionLimit)...)
		errs = append(errs, requiredWithLimit(ev.Reason, "reason", eventReasonLimit)...)
		if len(ev.Message) > eventNoteLimit {
			errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", eventNoteLimit)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(ev.Namespace) {
		errs = append(errs, field.Invalid(field.NewPath("namespace"), ev.Namespace, msg))
	}
	return errs
}

func requiredWithLimit(value, path string, limit int) field.ErrorList {
	var errs field.ErrorList
	if value == "" {
		errs = append(errs, field.Required(field.NewPath(path), ""))
	}
	if len(value) > limit {
		errs = append(errs, field.Invalid(field.NewPath(path), "", fmt.Sprintf("can have at most %v characters", limit)))
	}
	return errs
}
