package core

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
)

func podTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{
			registry.NameColumn,
			registry.Column("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
			registry.Column("Status", "string", 0, "The aggregate status of the containers in this pod."),
			registry.Column("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
			registry.AgeColumn,
			registry.Column("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
			registry.Column("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
			registry.Column("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
			registry.Column("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
		},
		Cells: func(obj runtime.Object, now time.Time) []any {
			pod := obj.(*corev1.Pod)
			ready, restarts := 0, 0
			var lastRestart time.Time
			reason := string(pod.Status.Phase)
			if pod.Status.Reason != "" {
				reason = pod.Status.Reason
			}
			initializing := false
			for i, cs := range pod.Status.InitContainerStatuses {
				restarts += int(cs.RestartCount)
				switch {
				case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
					continue
				case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
					reason = "Init:" + cs.State.Terminated.Reason
				case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
					reason = fmt.Sprintf("Init:Signal:%d", cs.State.Terminated.Signal)
				case cs.State.Terminated != nil:
					reason = fmt.Sprintf("Init:ExitCode:%d", cs.State.Terminated.ExitCode)
				case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
					reason = "Init:" + cs.State.Waiting.Reason
				default:
					reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
				}
				initializing = true
				break
			}
			hasRunning := false
			for i := len(pod.Status.ContainerStatuses) - 1; i >= 0 && !initializing; i-- {
				cs := pod.Status.ContainerStatuses[i]
				restarts += int(cs.RestartCount)
				if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
					lastRestart = t.FinishedAt.Time
				}
				switch {
				case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
					reason = cs.State.Waiting.Reason
				case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
					reason = cs.State.Terminated.Reason
				case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
					reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
				case cs.State.Terminated != nil:
					reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
				case cs.Ready && cs.State.Running != nil:
					hasRunning = true
					ready++
				}
			}
			if reason == "Completed" && hasRunning {
				reason = "Running"
			}
			if pod.DeletionTimestamp != nil {
				if pod.Status.Reason == "NodeLost" {
					reason = "Unknown"
				} else {
					reason = "Terminating"
				}
			}
			restartText := fmt.Sprint(restarts)
			if restarts > 0 && !lastRestart.IsZero() {
				restartText = fmt.Sprintf("%d (%s ago)", restarts, registry.Age(metav1.NewTime(lastRestart), now))
			}
			gates := registry.None
			if n := len(pod.Spec.ReadinessGates); n > 0 {
				passed := 0
				for _, g := range pod.Spec.ReadinessGates {
					for _, c := range pod.Status.Conditions {
						if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
							passed++
						}
					}
				}
				gates = fmt.Sprintf("%d/%d", passed, n)
			}
			return []any{pod.Name, fmt.Sprintf("%d/%d", ready, len(pod.Spec.Containers)), reason, restartText,
				registry.Age(pod.CreationTimestamp, now), registry.OrNone(pod.Status.PodIP), registry.OrNone(pod.Spec.NodeName),
				registry.OrNone(pod.Status.NominatedNodeName), gates}
		},
	}
}

func serviceTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{
			registry.NameColumn,
			registry.Column("Type", "string", 0, "type determines how the Service is exposed."),
			registry.Column("Cluster-IP", "string", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
			registry.Column("External-IP", "string", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
			registry.Column("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
			registry.AgeColumn,
			registry.Column("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
		},
		Cells: func(obj runtime.Object, now time.Time) []any {
			svc := obj.(*corev1.Service)
			clusterIP := registry.OrNone(svc.Spec.ClusterIP)
			var ports []string
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					ports = append(ports, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
				} else {
					ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
				}
			}
			portText := registry.None
			if len(ports) > 0 {
				portText = strings.Join(ports, ",")
			}
			selector := registry.None
			if len(svc.Spec.Selector) > 0 {
				selector = labels.FormatLabels(svc.Spec.Selector)
			}
			return []any{svc.Name, string(svc.Spec.Type), clusterIP, externalIP(svc), portText, registry.Age(svc.CreationTimestamp, now), selector}
		},
	}
}

func externalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				ips = append(ips, in.IP)
			} else if in.Hostname != "" {
				ips = append(ips, in.Hostname)
			}
		}
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		return strings.Join(svc.Spec.ExternalIPs, ",")
	}
	return registry.None
}

func namespaceTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Status", "string", 0, "The status of the namespace"), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			ns := obj.(*corev1.Namespace)
			return []any{ns.Name, string(ns.Status.Phase), registry.Age(ns.CreationTimestamp, now)}
		},
	}
}

func nodeTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Status", "string", 0, "The status of the node"),
			registry.Column("Roles", "string", 0, "The roles of the node"),
			registry.AgeColumn,
			registry.Column("Version", "string", 0, "Kubelet Version reported by the node."),
			registry.Column("Internal-IP", "string", 1, "List of addresses reachable to the node."),
			registry.Column("External-IP", "string", 1, "List of addresses reachable to the node."),
			registry.Column("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
			registry.Column("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
			registry.Column("Container-Runtime", "string", 1, "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
		},
		Cells: func(obj runtime.Object, now time.Time) []any {
			node := obj.(*corev1.Node)
			status := "Unknown"
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						status = "Ready"
					} else {
						status = "NotReady"
					}
				}
			}
			if node.Spec.Unschedulable {
				status += ",SchedulingDisabled"
			}
			var roles []string
			for k := range node.Labels {
				if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
					roles = append(roles, r)
				}
			}
			sort.Strings(roles)
			address := func(t corev1.NodeAddressType) string {
				for _, a := range node.Status.Addresses {
					if a.Type == t {
						return a.Address
					}
				}
				return registry.None
			}
			info := node.Status.NodeInfo
			return []any{node.Name, status, registry.OrNone(strings.Join(roles, ",")), registry.Age(node.CreationTimestamp, now),
				info.KubeletVersion, address(corev1.NodeInternalIP), address(corev1.NodeExternalIP),
				orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion)}
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func configMapTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn, registry.Column("Data", "string", 0, "Data contains the configuration data."), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			cm := obj.(*corev1.ConfigMap)
			return []any{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), registry.Age(cm.CreationTimestamp, now)}
		},
	}
}

func secretTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Type", "string", 0, "The type of the secret"),
			registry.Column("Data", "string", 0, "The number of entries in the secret"), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			s := obj.(*corev1.Secret)
			return []any{s.Name, string(s.Type), int64(len(s.Data)), registry.Age(s.CreationTimestamp, now)}
		},
	}
}

func serviceAccountTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Secrets", "string", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			sa := obj.(*corev1.ServiceAccount)
			return []any{sa.Name, int64(len(sa.Secrets)), registry.Age(sa.CreationTimestamp, now)}
		},
	}
}

func endpointsTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Endpoints", "string", 0, "Endpoints is the list of endpoints in the endpoints object."), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			ep := obj.(*corev1.Endpoints)
			var list []string
			total := 0
			for _, ss := range ep.Subsets {
				for _, a := range ss.Addresses {
					if len(ss.Ports) == 0 {
						total++
						if len(list) < 3 {
							list = append(list, a.IP)
						}
					}
					for _, p := range ss.Ports {
						total++
						if len(list) < 3 {
							list = append(list, fmt.Sprintf("%s:%d", a.IP, p.Port))
						}
					}
				}
			}
			text := registry.OrNone(strings.Join(list, ","))
			if total > len(list) {
				text += fmt.Sprintf(" + %d more...", total-len(list))
			}
			return []any{ep.Name, text, registry.Age(ep.CreationTimestamp, now)}
		},
	}
}

var EventColumns = []metav1.TableColumnDefinition{
	registry.Column("Last Seen", "string", 0, "Time when last event occurred"),
	registry.Column("Type", "string", 0, "Type of event"),
	registry.Column("Reason", "string", 0, "Reason of event"),
	registry.Column("Object", "string", 0, "Object this event is about"),
	registry.Column("Subobject", "string", 1, "Subobject this event is about"),
	registry.Column("Source", "string", 1, "Source of event"),
	registry.Column("Message", "string", 0, "Message of event"),
	registry.Column("First Seen", "string", 1, "Time when first event occurred"),
	registry.Column("Count", "string", 1, "Number of times event occurred"),
	registry.Column("Name", "string", 1, "Name of event"),
}

func EventRow(name string, last, first metav1.Time, typ, reason string, regarding corev1.ObjectReference, source, message string, count int32, now time.Time) []any {
	lastSeen := registry.Age(last, now)
	if last.IsZero() {
		lastSeen = registry.Age(first, now)
	}
	object := strings.ToLower(regarding.Kind) + "/" + regarding.Name
	return []any{lastSeen, typ, reason, object, regarding.FieldPath, source, message, registry.Age(first, now), int64(count), name}
}

func coreEventTable() *registry.Table {
	return &registry.Table{
		Columns: EventColumns,
		Cells: func(obj runtime.Object, now time.Time) []any {
			ev := obj.(*corev1.Event)
			last := ev.LastTimestamp
			if last.IsZero() && !ev.EventTime.IsZero() {
				last = metav1.NewTime(ev.EventTime.Time)
			}
			first := ev.FirstTimestamp
			if first.IsZero() {
				first = last
			}
			source := ev.Source.Component
			if ev.Source.Host != "" {
				source += ", " + ev.Source.Host
			}
			if source == "" {
				source = ev.ReportingController
			}
			count := ev.Count
			if count == 0 {
				count = 1
			}
			return EventRow(ev.Name, last, first, ev.Type, ev.Reason, ev.InvolvedObject, source, ev.Message, count, now)
		},
	}
}

// The columns of a workload's pod template, shown with -o wide.
var (
	ContainersColumn = registry.Column("Containers", "string", 1, "Names of each container in the template.")
	ImagesColumn     = registry.Column("Images", "string", 1, "Images referenced by each container in the template.")
	SelectorColumn   = registry.Column("Selector", "string", 1, "Label selector for pods.")
)

// TemplateCells are the Containers, Images and Selector cells of a
// workload.
func TemplateCells(template *corev1.PodTemplateSpec, selector *metav1.LabelSelector) (string, string, string) {
	var names, images []string
	for _, c := range template.Spec.Containers {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	sel := registry.None
	if s, err := metav1.LabelSelectorAsSelector(selector); err == nil && !s.Empty() {
		sel = s.String()
	}
	return strings.Join(names, ","), strings.Join(images, ","), sel
}
