package apiserver

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// kubectlTableAccept is what kubectl get sends.
const kubectlTableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func getTable(t *testing.T, ts *testServer, path string) metav1.Table {
	t.Helper()
	resp := ts.do("GET", path, "", "", "Accept", kubectlTableAccept)
	var table metav1.Table
	if err := json.Unmarshal(resp.body, &table); err != nil || table.Kind != "Table" {
		t.Fatalf("%s: not a Table (%v): %s", path, err, resp.body)
	}
	return table
}

func columnNames(table metav1.Table, maxPriority int32) string {
	var names []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority <= maxPriority {
			names = append(names, strings.ToUpper(c.Name))
		}
	}
	return strings.Join(names, " ")
}

func TestServiceTableHasUpstreamColumnsAndPorts(t *testing.T) {
	ts := newTestServer(t)
	svc := makeService("nginx-service", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 31203})
	if _, err := ts.client.CoreV1().Services("default").Create(ctx(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	table := getTable(t, ts, "/api/v1/namespaces/default/services")
	if got := columnNames(table, 0); got != "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE" {
		t.Fatalf("columns %q", got)
	}
	if got := columnNames(table, 1); !strings.HasSuffix(got, "SELECTOR") {
		t.Fatalf("wide columns %q", got)
	}
	rows := map[string][]any{}
	for _, r := range table.Rows {
		rows[r.Cells[0].(string)] = r.Cells
		var meta metav1.PartialObjectMetadata
		if err := json.Unmarshal(r.Object.Raw, &meta); err != nil || meta.Namespace != "default" {
			t.Fatalf("row object must carry metadata (for -A and --show-labels): %s", r.Object.Raw)
		}
	}
	if got := rows["nginx-service"]; got[1] != "NodePort" || got[3] != "<none>" || got[4] != "80:31203/TCP" || got[6] != "app=nginx-service" {
		t.Fatalf("nginx-service row %v", got)
	}
	if got := rows["kubernetes"]; got[2] != "10.43.0.1" || got[4] != "443/TCP" {
		t.Fatalf("kubernetes row %v", got)
	}
}

func TestPodTableWideShowsIPAndNode(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx(t), makePod("web-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx(t), &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Target: corev1.ObjectReference{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, _ = pods.Get(ctx(t), "web-1", metav1.GetOptions{})
	pod.Status.PodIP = "10.42.0.7"
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := pods.UpdateStatus(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	table := getTable(t, ts, "/api/v1/namespaces/default/pods/web-1")
	if got := columnNames(table, 1); got != "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES" {
		t.Fatalf("columns %q", got)
	}
	cells := table.Rows[0].Cells
	if cells[1] != "1/1" || cells[2] != "Running" || cells[3] != "0" || cells[5] != "10.42.0.7" || cells[6] != "node-a" {
		t.Fatalf("row %v", cells)
	}
}

func TestPartialObjectMetadataList(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do("GET", "/api/v1/namespaces", "", "", "Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
	var list metav1.PartialObjectMetadataList
	if err := json.Unmarshal(resp.body, &list); err != nil || list.Kind != "PartialObjectMetadataList" || len(list.Items) != 4 || list.Items[0].Name == "" {
		t.Fatalf("%v %s", err, resp.body)
	}
}

func TestTableWatchSendsColumnsOnce(t *testing.T) {
	ts := newTestServer(t)
	c, cancel := contextWithCancel(t)
	defer cancel()
	events := watchEventsWithAccept(t, ts, c, "/api/v1/namespaces?watch=true", kubectlTableAccept)
	for i := range 4 {
		ev := nextEvent(t, events)
		var table metav1.Table
		if err := json.Unmarshal(ev.Object.Raw, &table); err != nil || table.Kind != "Table" || len(table.Rows) != 1 {
			t.Fatalf("event %d: %s", i, ev.Object.Raw)
		}
		if (i == 0) != (len(table.ColumnDefinitions) > 0) {
			t.Fatalf("event %d has %d column definitions", i, len(table.ColumnDefinitions))
		}
	}
}

func TestEventsAreSharedBetweenCoreAndEventsAPI(t *testing.T) {
	ts := newTestServer(t)
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		EventTime:           metav1.NowMicro(),
		Regarding:           corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"},
		Reason:              "Scheduled",
		Note:                "Successfully assigned default/web to node-a",
		Type:                "Normal",
		Action:              "Binding",
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-node-a",
	}
	if _, err := ts.client.EventsV1().Events("default").Create(ctx(t), ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := ts.client.CoreV1().Events("default").List(ctx(t), metav1.ListOptions{FieldSelector: "involvedObject.name=web,involvedObject.kind=Pod"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Message != ev.Note || list.Items[0].Reason != "Scheduled" {
		t.Fatalf("core view: %v %+v", err, list)
	}
}

func TestSecretStringDataIsFoldedIntoData(t *testing.T) {
	ts := newTestServer(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"password": "hunter2"}}
	got, err := ts.client.CoreV1().Secrets("default").Create(ctx(t), secret, metav1.CreateOptions{})
	if err != nil || string(got.Data["password"]) != "hunter2" || got.StringData != nil || got.Type != corev1.SecretTypeOpaque {
		t.Fatalf("%v %+v", err, got)
	}
}

// Every printer must give one cell per column, also for an object with
// nothing set (a cell count mismatch makes kubectl print garbage).
func TestEveryTableHasOneCellPerColumn(t *testing.T) {
	ts := newTestServer(t)
	for gvr, res := range ts.api.resources.byGVR {
		tc := res.Table
		if tc == nil {
			tc = registry.DefaultTable
		}
		obj, err := ts.api.newObject(res)
		if err != nil {
			t.Fatalf("%v: %v", gvr, err)
		}
		if cells := tc.Cells(obj, time.Now()); len(cells) != len(tc.Columns) {
			t.Errorf("%v: %d cells for %d columns", gvr, len(cells), len(tc.Columns))
		}
	}
}

func TestExpiredEventsAreSweptByLaterEventWrites(t *testing.T) {
	ts := newTestServer(t)
	var clock atomicTime
	clock.set(time.Now())
	ts.api.now = clock.get
	events := ts.client.CoreV1().Events("default")
	old := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "old"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"}, Reason: "Old"}
	if _, err := events.Create(ctx(t), old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.set(clock.get().Add(2 * time.Hour))
	fresh := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"}, Reason: "Fresh"}
	if _, err := events.Create(ctx(t), fresh, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the expired event to be deleted", func() bool {
		list, err := events.List(ctx(t), metav1.ListOptions{})
		return err == nil && len(list.Items) == 1 && list.Items[0].Name == "fresh"
	})
}

// atomicTime is a settable clock safe for the server's goroutines.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) set(t time.Time) { a.mu.Lock(); a.t = t; a.mu.Unlock() }
func (a *atomicTime) get() time.Time  { a.mu.Lock(); defer a.mu.Unlock(); return a.t }

func TestPodStatusColumnShowsInitProgress(t *testing.T) {
	ts := newTestServer(t)
	pod := makePod("init")
	pod.Spec.InitContainers = []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}}
	pod.Spec.NodeName = "n"
	created, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
		{Name: "b", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
	}
	if _, err := ts.client.CoreV1().Pods("default").UpdateStatus(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	table := getTable(t, ts, "/api/v1/namespaces/default/pods/init")
	if got := table.Rows[0].Cells[2]; got != "Init:1/2" {
		t.Fatalf("STATUS %v", got)
	}
}
