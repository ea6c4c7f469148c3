package discovery

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// defaultEndpointSlice: a port without name or protocol is "" and TCP, as
// upstream's defaulting.
func defaultEndpointSlice(slice *discoveryv1.EndpointSlice) {
	for i := range slice.Ports {
		p := &slice.Ports[i]
		if p.Name == nil {
			p.Name = new(string)
		}
		if p.Protocol == nil {
			tcp := corev1.ProtocolTCP
			p.Protocol = &tcp
		}
	}
}

// prepareEndpointSlice: a new EndpointSlice is generation 1, as upstream.
func prepareEndpointSlice(obj runtime.Object) {
	slice := obj.(*discoveryv1.EndpointSlice)
	defaultEndpointSlice(slice)
	slice.Generation = 1
}

// prepareEndpointSliceUpdate bumps the generation when anything but
// metadata changed: an EndpointSlice has no spec, and upstream's strategy
// compares the whole object with both metadata blanked.
func prepareEndpointSliceUpdate(obj, old runtime.Object) {
	slice, oldSlice := obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice)
	defaultEndpointSlice(slice)
	a, b := *slice, *oldSlice
	a.ObjectMeta, b.ObjectMeta = metav1.ObjectMeta{}, metav1.ObjectMeta{}
	a.TypeMeta, b.TypeMeta = metav1.TypeMeta{}, metav1.TypeMeta{}
	if !equality.Semantic.DeepEqual(a, b) {
		slice.Generation = oldSlice.Generation + 1
	}
}

func endpointSliceTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("AddressType", "string", 0, "The IP protocol for this slice"),
			registry.Column("Ports", "string", 0, "The ports of the slice"),
			registry.Column("Endpoints", "string", 0, "Endpoints in the slice"), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			es := obj.(*discoveryv1.EndpointSlice)
			var ports []string
			for _, p := range es.Ports {
				if p.Port != nil {
					ports = append(ports, fmt.Sprint(*p.Port))
				}
			}
			portText := "<unset>"
			if len(ports) > 0 {
				portText = strings.Join(ports, ",")
			}
			var addrs []string
			total := 0
			for _, e := range es.Endpoints {
				for _, a := range e.Addresses {
					total++
					if len(addrs) < 3 {
						addrs = append(addrs, a)
					}
				}
			}
			text := "<unset>"
			if len(addrs) > 0 {
				text = strings.Join(addrs, ",")
				if total > len(addrs) {
					text += fmt.Sprintf(" + %d more...", total-len(addrs))
				}
			}
			return []any{es.Name, string(es.AddressType), portText, text, registry.Age(es.CreationTimestamp, now)}
		},
	}
}
