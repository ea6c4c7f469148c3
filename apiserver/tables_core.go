package apiserver

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

const none = "<none>"

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func podTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{
			nameColumn,
			column("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
			column("Status", "string", 0, "The aggregate status of the containers in this pod."),
			column("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
			ageColumn,
			column("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
			column("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
			column("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
			column("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
		},
		cells: func(obj runtime.Object, now time.Time) []any {
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
				restartText = fmt.Sprintf("%d (%s ago)", restarts, age(metav1.NewTime(lastRestart), now))
			}
			gates := none
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
				age(pod.CreationTimestamp, now), orNone(pod.Status.PodIP), orNone(pod.Spec.NodeName),
				orNone(pod.Status.NominatedNodeName), gates}
		},
	}
}

func serviceTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{
			nameColumn,
			column("Type", "string", 0, "type determines how the Service is exposed."),
			column("Cluster-IP", "string", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
			column("External-IP", "string", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
			column("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
			ageColumn,
			column("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
		},
		cells: func(obj runtime.Object, now time.Time) []any {
			svc := obj.(*corev1.Service)
			clusterIP := orNone(svc.Spec.ClusterIP)
			var ports []string
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					ports = append(ports, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
				} else {
					ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
				}
			}
			portText := none
			if len(ports) > 0 {
				portText = strings.Join(ports, ",")
			}
			selector := none
			if len(svc.Spec.Selector) > 0 {
				selector = labels.FormatLabels(svc.Spec.Selector)
			}
			return []any{svc.Name, string(svc.Spec.Type), clusterIP, externalIP(svc), portText, age(svc.CreationTimestamp, now), selector}
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
	return none
}

func namespaceTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn,
			column("Status", "string", 0, "The status of the namespace"), ageColumn},
		cells: func(obj runtime.Object, now time.Time) []any {
			ns := obj.(*corev1.Namespace)
			return []any{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now)}
		},
	}
}

func nodeTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn,
			column("Status", "string", 0, "The status of the node"),
			column("Roles", "string", 0, "The roles of the node"),
			ageColumn,
			column("Version", "string", 0, "Kubelet Version reported by the node."),
			column("Internal-IP", "string", 1, "List of addresses reachable to the node."),
			column("External-IP", "string", 1, "List of addresses reachable to the node."),
			column("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
			column("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
			column("Container-Runtime", "string", 1, "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
		},
		cells: func(obj runtime.Object, now time.Time) []any {
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
				return none
			}
			info := node.Status.NodeInfo
			return []any{node.Name, status, orNone(strings.Join(roles, ",")), age(node.CreationTimestamp, now),
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

func configMapTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn, column("Data", "string", 0, "Data contains the configuration data."), ageColumn},
		cells: func(obj runtime.Object, now time.Time) []any {
			cm := obj.(*corev1.ConfigMap)
			return []any{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp, now)}
		},
	}
}

func secretTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn,
			column("Type", "string", 0, "The type of the secret"),
			column("Data", "string", 0, "The number of entries in the secret"), ageColumn},
		cells: func(obj runtime.Object, now time.Time) []any {
			s := obj.(*corev1.Secret)
			return []any{s.Name, string(s.Type), int64(len(s.Data)), age(s.CreationTimestamp, now)}
		},
	}
}

func serviceAccountTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn,
			column("Secrets", "string", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), ageColumn},
		cells: func(obj runtime.Object, now time.Time) []any {
			sa := obj.(*corev1.ServiceAccount)
			return []any{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now)}
		},
	}
}

func endpointsTable() *tableConvertor {
	return &tableConvertor{
		columns: []metav1.TableColumnDefinition{nameColumn,
			column("Endpoints", "string", 0, "Endpoints is the list of endpoints in the endpoints object."), ageColumn},
		cells: func(obj runtime.Object, now time.Time) []any {
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
			text := orNone(strings.Join(list, ","))
			if total > len(list) {
				text += fmt.Sprintf(" + %d more...", total-len(list))
			}
			return []any{ep.Name, text, age(ep.CreationTimestamp, now)}
		},
	}
}

var eventColumns = []metav1.TableColumnDefinition{
	column("Last Seen", "string", 0, "Time when last event occurred"),
	column("Type", "string", 0, "Type of event"),
	column("Reason", "string", 0, "Reason of event"),
	column("Object", "string", 0, "Object this event is about"),
	column("Subobject", "string", 1, "Subobject this event is about"),
	column("Source", "string", 1, "Source of event"),
	column("Message", "string", 0, "Message of event"),
	column("First Seen", "string", 1, "Time when first event occurred"),
	column("Count", "string", 1, "Number of times event occurred"),
	column("Name", "string", 1, "Name of event"),
}

func eventRow(name string, last, first metav1.Time, typ, reason string, regarding corev1.ObjectReference, source, message string, count int32, now time.Time) []any {
	lastSeen := age(last, now)
	if last.IsZero() {
		lastSeen = age(first, now)
	}
	object := strings.ToLower(regarding.Kind) + "/" + regarding.Name
	return []any{lastSeen, typ, reason, object, regarding.FieldPath, source, message, age(first, now), int64(count), name}
}

func coreEventTable() *tableConvertor {
	return &tableConvertor{
		columns: eventColumns,
		cells: func(obj runtime.Object, now time.Time) []any {
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
			return eventRow(ev.Name, last, first, ev.Type, ev.Reason, ev.InvolvedObject, source, ev.Message, count, now)
		},
	}
}
