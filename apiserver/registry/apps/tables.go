package apps

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ptrs "k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/core"
)

func deploymentTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Ready", "string", 0, "Number of the pod with ready state"),
			registry.Column("Up-to-date", "string", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
			registry.Column("Available", "string", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn, core.SelectorColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			d := obj.(*appsv1.Deployment)
			c, i, s := core.TemplateCells(&d.Spec.Template, d.Spec.Selector)
			return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, ptrs.Deref(d.Spec.Replicas, 0)),
				int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), registry.Age(d.CreationTimestamp, now), c, i, s}
		},
	}
}

func replicaSetTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Desired", "integer", 0, "Replicas is the number of desired replicas."),
			registry.Column("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
			registry.Column("Ready", "integer", 0, "The number of ready replicas for this replica set."),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn, core.SelectorColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			rs := obj.(*appsv1.ReplicaSet)
			c, i, s := core.TemplateCells(&rs.Spec.Template, rs.Spec.Selector)
			return []any{rs.Name, int64(ptrs.Deref(rs.Spec.Replicas, 0)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
				registry.Age(rs.CreationTimestamp, now), c, i, s}
		},
	}
}

func daemonSetTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod."),
			registry.Column("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
			registry.Column("Ready", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
			registry.Column("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
			registry.Column("Available", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
			registry.Column("Node Selector", "string", 0, "NodeSelector is a selector which must be true for the pod to fit on a node."),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn, core.SelectorColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			ds := obj.(*appsv1.DaemonSet)
			c, i, s := core.TemplateCells(&ds.Spec.Template, ds.Spec.Selector)
			return []any{ds.Name, int64(ds.Status.DesiredNumberScheduled), int64(ds.Status.CurrentNumberScheduled),
				int64(ds.Status.NumberReady), int64(ds.Status.UpdatedNumberScheduled), int64(ds.Status.NumberAvailable),
				registry.OrNone(labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector)), registry.Age(ds.CreationTimestamp, now), c, i, s}
		},
	}
}

func statefulSetTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Ready", "string", 0, "Number of the pod with ready state"),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			ss := obj.(*appsv1.StatefulSet)
			c, i, _ := core.TemplateCells(&ss.Spec.Template, ss.Spec.Selector)
			return []any{ss.Name, fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, ptrs.Deref(ss.Spec.Replicas, 0)), registry.Age(ss.CreationTimestamp, now), c, i}
		},
	}
}

func controllerRevisionTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Controller", "string", 0, "Controller of the object"),
			registry.Column("Revision", "string", 0, "Revision of the ControllerRevision"), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			cr := obj.(*appsv1.ControllerRevision)
			controller := registry.None
			if ref := metav1.GetControllerOf(cr); ref != nil {
				gv, _ := schema.ParseGroupVersion(ref.APIVersion)
				controller = strings.ToLower(ref.Kind) + "." + gv.Group + "/" + ref.Name
				if gv.Group == "" {
					controller = strings.ToLower(ref.Kind) + "/" + ref.Name
				}
			}
			return []any{cr.Name, controller, cr.Revision, registry.Age(cr.CreationTimestamp, now)}
		},
	}
}
