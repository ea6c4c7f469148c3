package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// invalidCase is a write that upstream refuses with 422 and exactly these
// causes (in the message, after "<Kind> "<name>" is invalid: ").
type invalidCase struct {
	name   string
	path   string
	body   string
	causes string
}

func runInvalidCases(t *testing.T, ts *testServer, method string, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.do(method, tc.path, "application/json", tc.body)
			st := resp.status(t)
			if resp.code != http.StatusUnprocessableEntity || st.Reason != "Invalid" {
				t.Fatalf("got %d %s %q, want 422 Invalid", resp.code, st.Reason, st.Message)
			}
			_, causes, _ := strings.Cut(st.Message, " is invalid: ")
			if causes != tc.causes {
				t.Fatalf("message %q\nwant causes %q", st.Message, tc.causes)
			}
			if len(st.Details.Causes) == 0 || st.Details.Causes[0].Field == "" {
				t.Fatalf("no field causes in details: %+v", st.Details)
			}
		})
	}
}

func TestEndpointsValidation(t *testing.T) {
	ts := newTestServer(t)
	const eps = "/api/v1/namespaces/default/endpoints"
	subset := func(ip string) string {
		return `{"metadata":{"name":"e"},"subsets":[{"addresses":[{"ip":"` + ip + `"}],"ports":[{"port":80,"protocol":"TCP"}]}]}`
	}
	runInvalidCases(t, ts, "POST", []invalidCase{
		{"loopback", eps, subset("127.0.0.1"),
			`subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`},
		{"ipv6 loopback", eps, subset("::1"),
			`subsets[0].addresses[0].ip: Invalid value: "::1": may not be in the loopback range (127.0.0.0/8, ::1/128)`},
		{"link-local", eps, subset("169.254.169.254"),
			`subsets[0].addresses[0].ip: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)`},
		{"ipv6 link-local", eps, subset("fe80::1"),
			`subsets[0].addresses[0].ip: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`},
		{"link-local multicast", eps, subset("224.0.0.1"),
			`subsets[0].addresses[0].ip: Invalid value: "224.0.0.1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)`},
		{"unspecified", eps, subset("0.0.0.0"),
			`subsets[0].addresses[0].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)`},
		{"not an IP", eps, subset("nope"),
			`subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`},
		{"leading zeros", eps, subset("010.1.2.3"),
			`subsets[0].addresses[0].ip: Invalid value: "010.1.2.3": must not have leading 0s`},
		{"no addresses", eps, `{"metadata":{"name":"e"},"subsets":[{"ports":[{"port":80,"protocol":"TCP"}]}]}`,
			"subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"},
		{"bad port, protocol, hostname and node name", eps,
			`{"metadata":{"name":"e"},"subsets":[{"notReadyAddresses":[{"ip":"10.0.0.1","hostname":"Bad_Host","nodeName":"Bad_Node"}],"ports":[{"name":"a","port":0,"protocol":"ICMP"},{"port":70000,"protocol":"TCP"}]}]}`,
			`[subsets[0].notReadyAddresses[0].hostname: Invalid value: "Bad_Host": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'), ` +
				`subsets[0].notReadyAddresses[0].nodeName: Invalid value: "Bad_Node": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), ` +
				`subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, ` +
				`subsets[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP", ` +
				`subsets[0].ports[1].name: Required value, ` +
				`subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive]`},
	})
	resp := ts.do("POST", eps, "application/json", subset("10.1.2.3"))
	if resp.code != http.StatusCreated {
		t.Fatalf("valid Endpoints refused: %d %s", resp.code, resp.body)
	}
}

func TestEndpointSliceValidation(t *testing.T) {
	ts := newTestServer(t)
	const slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
	slice := func(addressType, address string) string {
		return `{"metadata":{"name":"s"},"addressType":"` + addressType + `","endpoints":[{"addresses":["` + address + `"]}],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}`
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf(`{"addresses":["10.0.%d.%d"]}`, i/250, i%250+1)
	}
	runInvalidCases(t, ts, "POST", []invalidCase{
		{"loopback", slices, slice("IPv4", "127.0.0.1"),
			`endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`},
		{"ipv6 link-local", slices, slice("IPv6", "fe80::1"),
			`endpoints[0].addresses[0]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`},
		{"not an IP", slices, slice("IPv4", "x.y"),
			`endpoints[0].addresses[0]: Invalid value: "x.y": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`},
		{"wrong family", slices, slice("IPv4", "2001:db8::1"),
			`endpoints[0].addresses[0]: Invalid value: "2001:db8::1": must be an IPv4 address`},
		{"bad FQDN", slices, slice("FQDN", "Not_A_Name"),
			`endpoints[0].addresses[0]: Invalid value: "Not_A_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"missing addressType", slices, `{"metadata":{"name":"s"},"endpoints":[]}`, `addressType: Required value`},
		{"unknown addressType", slices, `{"metadata":{"name":"s"},"addressType":"IP"}`,
			`addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"`},
		{"endpoint without address, bad hostname and nodeName", slices,
			`{"metadata":{"name":"s"},"addressType":"IPv4","endpoints":[{"addresses":[],"hostname":"A","nodeName":"N_1"}]}`,
			`[endpoints[0].addresses: Required value: must contain at least 1 address, ` +
				`endpoints[0].nodeName: Invalid value: "N_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), ` +
				`endpoints[0].hostname: Invalid value: "A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')]`},
		{"ports", slices,
			`{"metadata":{"name":"s"},"addressType":"IPv4","ports":[{"name":"http","protocol":"ICMP"},{"name":"http","protocol":"TCP"},{"name":"dns","port":53}]}`,
			`[ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP", ports[1].name: Duplicate value: "http"]`},
		{"hints", slices,
			`{"metadata":{"name":"s"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"hints":{"forZones":[{"name":"a"},{"name":"a"}],"forNodes":[{"name":"Node_1"}]}}]}`,
			`[endpoints[0].hints.forZones[1].name: Duplicate value: "a", ` +
				`endpoints[0].hints.forNodes[0].name: Invalid value: "Node_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')]`},
		{"too many endpoints", slices, `{"metadata":{"name":"s"},"addressType":"IPv4","endpoints":[` + strings.Join(many, ",") + `]}`,
			`endpoints: Too many: 1001: must have at most 1000 items`},
	})
	resp := ts.do("POST", slices, "application/json", slice("IPv4", "10.1.2.3"))
	if resp.code != http.StatusCreated {
		t.Fatalf("valid EndpointSlice refused: %d %s", resp.code, resp.body)
	}
	runInvalidCases(t, ts, "PUT", []invalidCase{
		{"addressType is immutable", slices + "/s", slice("IPv6", "2001:db8::1"),
			`addressType: Invalid value: "IPv6": field is immutable`},
	})
}

func TestEndpointSliceGeneration(t *testing.T) {
	ts := newTestServer(t)
	c := ts.client.DiscoveryV1().EndpointSlices("default")
	port := int32(80)
	slice, err := c.Create(ctx(t), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "gen", Generation: 7},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slice.Generation != 1 || *slice.Ports[0].Protocol != corev1.ProtocolTCP || *slice.Ports[0].Name != "" {
		t.Fatalf("created: generation %d, port %+v; want generation 1, TCP and name \"\"", slice.Generation, slice.Ports[0])
	}
	slice.Labels = map[string]string{"only": "metadata"}
	if slice, err = c.Update(ctx(t), slice, metav1.UpdateOptions{}); err != nil || slice.Generation != 1 {
		t.Fatalf("metadata-only update: generation %d, %v; want 1", slice.Generation, err)
	}
	slice.Endpoints[0].Addresses = []string{"10.0.0.2"}
	if slice, err = c.Update(ctx(t), slice, metav1.UpdateOptions{}); err != nil || slice.Generation != 2 {
		t.Fatalf("endpoints update: generation %d, %v; want 2", slice.Generation, err)
	}
	slice.Generation = 10
	slice.Ports[0].Name = nil
	if slice, err = c.Update(ctx(t), slice, metav1.UpdateOptions{}); err != nil || slice.Generation != 2 {
		t.Fatalf("update that only sets the defaulted port name again: generation %d, %v; want 2", slice.Generation, err)
	}
}
