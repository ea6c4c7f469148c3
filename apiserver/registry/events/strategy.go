package events

import (
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/core"
)

var eventsV1 = schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}

// Group serves events.k8s.io/v1.
type Group struct {
	// EventWritten is told of every write of an event (its Admit hook),
	// so the server can expire old ones, as core/v1's.
	EventWritten registry.AdmitFunc
}

// Resources are the Events.
func (g Group) Resources(registry.Config) []*registry.Resource {
	return []*registry.Resource{{GVR: eventsV1.WithResource("events"), Kind: "Event", Singular: "event", Namespaced: true,
		ShortNames: []string{"ev"}, NameValidation: apimachineryvalidation.NameIsDNSSubdomain, KeepStatusOnCreate: true, AllowCreateOnUpdate: true,
		Validate: validateEventsV1Event, Admit: g.EventWritten, Table: eventsV1Table(), StoredAs: eventsAsCoreEvents()}}
}

// eventsAsCoreEvents stores events.k8s.io/v1 Events as core/v1 Events, so
// that both APIs show the same events, as upstream does: what the
// scheduler records through events.k8s.io appears in `kubectl describe`.
func eventsAsCoreEvents() *registry.StorageConversion {
	return &registry.StorageConversion{
		Group: "core", Resource: "events",
		NewStorage:  func() runtime.Object { return &corev1.Event{} },
		ToStorage:   func(obj runtime.Object) runtime.Object { return coreEventFromEventsV1(obj.(*eventsv1.Event)) },
		FromStorage: func(obj runtime.Object) runtime.Object { return eventsV1FromCoreEvent(obj.(*corev1.Event)) },
	}
}

func coreEventFromEventsV1(in *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		TypeMeta:            metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Related:             in.Related,
		Reason:              in.Reason,
		Message:             in.Note,
		Type:                in.Type,
		Action:              in.Action,
		EventTime:           in.EventTime,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}

func eventsV1FromCoreEvent(in *corev1.Event) *eventsv1.Event {
	out := &eventsv1.Event{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta:               in.ObjectMeta,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Reason:                   in.Reason,
		Note:                     in.Message,
		Type:                     in.Type,
		Action:                   in.Action,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}

// validateEventsV1Event is upstream's event validation for requests
// through events.k8s.io/v1: the legacy rules, and on top the strict ones
// of the new API. Paths name the fields of the stored (core) event, as
// upstream's, which validates its internal type.
func validateEventsV1Event(obj, old runtime.Object) field.ErrorList {
	ev := coreEventFromEventsV1(obj.(*eventsv1.Event))
	errs := core.LegacyValidateEvent(ev, "reportingController")
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

func eventsV1Table() *registry.Table {
	return &registry.Table{
		Columns: core.EventColumns,
		Cells: func(obj runtime.Object, now time.Time) []any {
			ev := obj.(*eventsv1.Event)
			last := metav1.NewTime(ev.EventTime.Time)
			if ev.Series != nil {
				last = metav1.NewTime(ev.Series.LastObservedTime.Time)
			} else if !ev.DeprecatedLastTimestamp.IsZero() {
				last = ev.DeprecatedLastTimestamp
			}
			first := ev.DeprecatedFirstTimestamp
			if first.IsZero() {
				first = metav1.NewTime(ev.EventTime.Time)
			}
			count := int32(1)
			if ev.Series != nil {
				count = ev.Series.Count
			}
			return core.EventRow(ev.Name, last, first, ev.Type, ev.Reason, ev.Regarding, ev.ReportingController, ev.Note, count, now)
		},
	}
}
