package apiserver

import "testing"

func TestEventValidation(t *testing.T) {
	ts := newTestServer(t)
	const coreEvents = "/api/v1/namespaces/default/events"
	const events = "/apis/events.k8s.io/v1/namespaces/default/events"
	const eventTime = `"eventTime":"2026-01-02T03:04:05.000000Z"`
	runInvalidCases(t, ts, "POST", []invalidCase{
		{"core event of another namespace's object", coreEvents,
			`{"metadata":{"name":"e1"},"involvedObject":{"kind":"Pod","namespace":"kube-system","name":"p"},"reason":"R"}`,
			`involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace`},
		{"core event with eventTime needs who reported what", coreEvents,
			`{"metadata":{"name":"e2"},"involvedObject":{"kind":"Pod","namespace":"default","name":"p"},` + eventTime + `}`,
			`[reportingComponent: Required value, ` +
				`reportingComponent: Invalid value: "": name part must be non-empty, ` +
				`reportingComponent: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), ` +
				`reportingInstance: Required value, action: Required value, reason: Required value]`},
		{"events.k8s.io event without eventTime and type", events,
			`{"metadata":{"name":"e3"},"regarding":{"kind":"Pod","namespace":"default","name":"p"},"reason":"R"}`,
			`[eventTime: Required value, type: Invalid value: "": has invalid value: ]`},
		{"events.k8s.io event with deprecated fields", events,
			`{"metadata":{"name":"e4"},"regarding":{"kind":"Pod","namespace":"default","name":"p"},` + eventTime +
				`,"type":"Normal","reason":"R","action":"A","reportingController":"example.com/c","reportingInstance":"i",` +
				`"deprecatedCount":3,"deprecatedSource":{"component":"x"},"series":{"count":1}}`,
			`[series.count: Invalid value: "": should be at least 2, series.lastObservedTime: Required value, deprecatedCount: Invalid value: "": needs to be unset, deprecatedSource: Invalid value: "": needs to be unset]`},
	})
	legacyName := `{"metadata":{"name":"web-1.Node_A"},"involvedObject":{"kind":"Node","name":"Node_A"},"reason":"R"}`
	if resp := ts.do("POST", coreEvents, "application/json", legacyName); resp.code != 201 {
		t.Fatalf("core event with a name that is no DNS subdomain refused, upstream takes it: %d %s", resp.code, resp.body)
	}
	runInvalidCases(t, ts, "POST", []invalidCase{
		{"core event name with a slash", coreEvents, `{"metadata":{"name":"a/b"},"involvedObject":{"kind":"Node","name":"n"}}`,
			`metadata.name: Invalid value: "a/b": may not contain '/'`},
		{"events.k8s.io event names are DNS subdomains", events,
			`{"metadata":{"name":"Web_1"},"regarding":{"kind":"Pod","namespace":"default","name":"p"},` + eventTime +
				`,"type":"Normal","reason":"R","action":"A","reportingController":"example.com/c","reportingInstance":"i"}`,
			`metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
	})
	good := `{"metadata":{"name":"ok"},"regarding":{"kind":"Pod","namespace":"default","name":"p"},` + eventTime +
		`,"type":"Normal","reason":"Started","action":"Start","reportingController":"example.com/c","reportingInstance":"i","note":"n"}`
	if resp := ts.do("POST", events, "application/json", good); resp.code != 201 {
		t.Fatalf("valid event refused: %d %s", resp.code, resp.body)
	}
	runInvalidCases(t, ts, "PUT", []invalidCase{
		{"events.k8s.io event note is immutable", events + "/ok",
			`{"metadata":{"name":"ok"},"regarding":{"kind":"Pod","namespace":"default","name":"p"},` + eventTime +
				`,"type":"Normal","reason":"Started","action":"Start","reportingController":"example.com/c","reportingInstance":"i","note":"changed"}`,
			`message: Invalid value: "changed": field is immutable`},
	})
}
