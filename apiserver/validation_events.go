package apiserver

import (
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
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
	return legacyValidateEvent(obj.(*corev1.Event), "reportingComponent")
}

// validateEventsV1Event is upstream's event validation for requests
// through events.k8s.io/v1: the legacy rules, and on top the strict ones
// of the new API. Paths name the fields of the stored (core) event, as
// upstream's, which validates its internal type.
func validateEventsV1Event(obj, old runtime.Object) field.ErrorList {
	ev := coreEventFromEventsV1(obj.(*eventsv1.Event))
	errs := legacyValidateEvent(ev, "reportingController")
	if old == nil {
		errs = append(errs, validateEventSeries(ev)...)
		if ev.EventTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
		}
		if ev.Type != corev1.EventTypeNormal && ev.Type != corev1.EventTypeWarning {
			errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", ev.Type)))
		}
		for _, unset := range []struct {
			path string
			set  bool
		}{
			{"deprecatedFirstTimestamp", !ev.FirstTimestamp.IsZero()},
			{"deprecatedLastTimestamp", !ev.LastTimestamp.IsZero()},
			{"deprecatedCount", ev.Count != 0},
			{"deprecatedSource", ev.Source.Component != "" || ev.Source.Host != ""},
		} {
			if unset.set {
				errs = append(errs, field.Invalid(field.NewPath(unset.path), "", "needs to be unset"))
			}
		}
		return errs
	}
	oldEv := coreEventFromEventsV1(old.(*eventsv1.Event))
	if !reflect.DeepEqual(ev.Series, oldEv.Series) {
		errs = append(errs, validateEventSeries(ev)...)
	}
	for _, f := range []struct {
		path     string
		new, old any
	}{
		{"involvedObject", ev.InvolvedObject, oldEv.InvolvedObject},
		{"reason", ev.Reason, oldEv.Reason},
		{"message", ev.Message, oldEv.Message},
		{"source", ev.Source, oldEv.Source},
		{"firstTimestamp", ev.FirstTimestamp, oldEv.FirstTimestamp},
		{"lastTimestamp", ev.LastTimestamp, oldEv.LastTimestamp},
		{"count", ev.Count, oldEv.Count},
		{"reason", ev.Reason, oldEv.Reason},
		{"type", ev.Type, oldEv.Type},
		{"eventTime", ev.EventTime, oldEv.EventTime},
		{"action", ev.Action, oldEv.Action},
		{"related", ev.Related, oldEv.Related},
		{"reportingController", ev.ReportingController, oldEv.ReportingController},
		{"reportingInstance", ev.ReportingInstance, oldEv.ReportingInstance},
	} {
		errs = append(errs, apimachineryvalidation.ValidateImmutableField(f.new, f.old, field.NewPath(f.path))...)
	}
	return errs
}

func validateEventSeries(ev *corev1.Event) field.ErrorList {
	if ev.Series == nil {
		return nil
	}
	var errs field.ErrorList
	if ev.Series.Count < 2 {
		errs = append(errs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
	}
	if ev.Series.LastObservedTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return errs
}

// legacyValidateEvent: events without eventTime (the old API) need only a
// matching namespace; events with eventTime need who reported what.
// reportingControllerField is how the request's API version names
// reportingController.
func legacyValidateEvent(ev *corev1.Event, reportingControllerField string) field.ErrorList {
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
