package registry

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Table prints a resource as upstream's server-side printer does.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Cells returns one row's cells, in column order, the first being the
	// name. now is for ages.
	Cells func(obj runtime.Object, now time.Time) []any
}

// Column is a shorthand for a column definition; priority 1 columns show
// only with -o wide.
func Column(name, typ string, priority int32, description string) metav1.TableColumnDefinition {
	format := ""
	if name == "Name" {
		format = "name"
	}
	return metav1.TableColumnDefinition{Name: name, Type: typ, Format: format, Priority: priority, Description: description}
}

// NameColumn and AgeColumn are the columns most tables start and end with.
var (
	NameColumn = Column("Name", "string", 0, "Name must be unique within a namespace.")
	AgeColumn  = Column("Age", "string", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")
)

// DefaultTable is upstream's fallback for resources without a printer.
var DefaultTable = &Table{
	Columns: []metav1.TableColumnDefinition{NameColumn, Column("Created At", "date", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")},
	Cells: func(obj runtime.Object, _ time.Time) []any {
		m, err := meta.Accessor(obj)
		if err != nil {
			panic(fmt.Sprintf("registry: %T has no ObjectMeta", obj))
		}
		return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}
	},
}

// Age prints how long ago t was, as kubectl does.
func Age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// None is what a table prints for an empty value.
const None = "<none>"

// OrNone is s, or None when s is empty.
func OrNone(s string) string {
	if s == "" {
		return None
	}
	return s
}
