package plugins

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestNodePortsFilter(t *testing.T) {
	const reason = "node(s) didn't have free ports for the requested pod ports"
	node := st.MakeNode().Name("n1").Obj()
	using := func(port int32, proto corev1.Protocol, ip string) *framework.NodeInfo {
		return nodeWith(node, st.MakePod().Name("other").Node("n1").HostPort(port, proto, ip).Obj())
	}
	runFilterCases(t, NodePorts{}, []filterCase{
		{name: "pod without host ports passes", pod: st.MakePod().Name("p").Obj(), node: using(80, "TCP", ""), code: framework.Success},
		{name: "same port and protocol on all addresses conflicts", pod: st.MakePod().Name("p").HostPort(80, "TCP", "").Obj(), node: using(80, "TCP", ""),
			code: framework.Unschedulable, reasons: []string{reason}},
		{name: "protocol defaults to TCP", pod: st.MakePod().Name("p").HostPort(80, "", "").Obj(), node: using(80, "TCP", ""),
			code: framework.Unschedulable, reasons: []string{reason}},
		{name: "other protocol is free", pod: st.MakePod().Name("p").HostPort(80, "UDP", "").Obj(), node: using(80, "TCP", ""), code: framework.Success},
		{name: "other port is free", pod: st.MakePod().Name("p").HostPort(81, "TCP", "").Obj(), node: using(80, "TCP", ""), code: framework.Success},
		{name: "different specific IPs do not conflict", pod: st.MakePod().Name("p").HostPort(80, "TCP", "127.0.0.2").Obj(), node: using(80, "TCP", "127.0.0.1"), code: framework.Success},
		{name: "specific IP conflicts with 0.0.0.0 in use", pod: st.MakePod().Name("p").HostPort(80, "TCP", "127.0.0.1").Obj(), node: using(80, "TCP", ""),
			code: framework.Unschedulable, reasons: []string{reason}},
		{name: "0.0.0.0 conflicts with a specific IP in use", pod: st.MakePod().Name("p").HostPort(80, "TCP", "").Obj(), node: using(80, "TCP", "127.0.0.1"),
			code: framework.Unschedulable, reasons: []string{reason}},
	})
}
