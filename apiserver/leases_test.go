package apiserver

import "testing"

func TestLeaseValidation(t *testing.T) {
	ts := newTestServer(t)
	const leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
	runInvalidCases(t, ts, "POST", []invalidCase{
		{"durations and transitions", leases,
			`{"metadata":{"name":"l"},"spec":{"leaseDurationSeconds":0,"leaseTransitions":-1}}`,
			`[spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0]`},
		{"unknown strategy", leases, `{"metadata":{"name":"l"},"spec":{"strategy":"Youngest"}}`,
			`spec.strategy: Unsupported value: "Youngest": supported values: "OldestEmulationVersion"`},
		{"preferred holder without strategy", leases, `{"metadata":{"name":"l"},"spec":{"preferredHolder":"me"}}`,
			"spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"},
	})
}
