package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func makePDB(name string, minAvailable *intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
}

func TestPodDisruptionBudgetCreateStartsAtGenerationOneWithoutStatus(t *testing.T) {
	ts := newTestServer(t)
	pdb := makePDB("web", ptr(intstr.FromInt32(2)))
	pdb.Status.DisruptionsAllowed = 5
	got, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Create(ctx(t), pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || got.Status.DisruptionsAllowed != 0 || got.Spec.MaxUnavailable != nil || got.Spec.UnhealthyPodEvictionPolicy != nil {
		t.Fatalf("created: generation %d, status %+v, spec %+v", got.Generation, got.Status, got.Spec)
	}

	// Status writes leave spec and generation alone, spec writes status.
	got.Status.DisruptionsAllowed, got.Status.ObservedGeneration = 1, 1
	got.Spec.MinAvailable = ptr(intstr.FromInt32(9))
	st, err := ts.client.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx(t), got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.DisruptionsAllowed != 1 || st.Spec.MinAvailable.IntValue() != 2 || st.Generation != 1 {
		t.Fatalf("after status write: %+v generation %d", st, st.Generation)
	}
	st.Spec.MinAvailable = ptr(intstr.FromString("50%"))
	st.Status.DisruptionsAllowed = 7
	upd, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Update(ctx(t), st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Generation != 2 || upd.Status.DisruptionsAllowed != 1 || upd.Spec.MinAvailable.String() != "50%" {
		t.Fatalf("after spec write: generation %d, status %+v, spec %+v", upd.Generation, upd.Status, upd.Spec)
	}
}

func TestPodDisruptionBudgetValidationMessages(t *testing.T) {
	ts := newTestServer(t)
	for name, tc := range map[string]struct {
		spec policyv1.PodDisruptionBudgetSpec
		want string
	}{
		"both bounds": {policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromInt32(1))},
			"minAvailable and maxUnavailable cannot be both set"},
		"negative": {policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(-1))},
			"spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"},
		"over 100%": {policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromString("120%"))},
			`spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%`},
		"not a percent": {policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromString("half"))},
			`spec.maxUnavailable: Invalid value: "half": a valid percent string must be a numeric string followed by an ending '%'`},
		"policy": {policyv1.PodDisruptionBudgetSpec{UnhealthyPodEvictionPolicy: ptr(policyv1.UnhealthyPodEvictionPolicyType("Never"))},
			`spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"`},
		"selector": {policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "not valid!"}}},
			`spec.selector.matchLabels: Invalid value: "not valid!"`},
	} {
		t.Run(name, func(t *testing.T) {
			pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tc.spec}
			_, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Create(ctx(t), pdb, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want 422 with %q", err, tc.want)
			}
		})
	}
}

func TestPodDisruptionBudgetTable(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Create(ctx(t), makePDB("web", ptr(intstr.FromString("50%"))), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(http.MethodGet, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", "", "", "Accept", kubectlTableAccept)
	var table metav1.Table
	if err := json.Unmarshal(resp.body, &table); err != nil || resp.code != http.StatusOK {
		t.Fatalf("%d %v: %s", resp.code, err, resp.body)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "Name,Min Available,Max Unavailable,Allowed Disruptions,Age" {
		t.Fatalf("columns %s", got)
	}
	if len(table.Rows) != 1 || table.Rows[0].Cells[1] != "50%" || table.Rows[0].Cells[2] != "N/A" || table.Rows[0].Cells[3] != float64(0) {
		t.Fatalf("rows %+v", table.Rows)
	}
}

// evictionFixture is a budget over ready, running pods web-0..web-n-1
// whose status the test sets as the disruption controller would.
func evictionFixture(t *testing.T, ts *testServer, pods int, status policyv1.PodDisruptionBudgetStatus) {
	t.Helper()
	for i := range pods {
		p := makePod("web-" + string(rune('0'+i)))
		created, err := ts.client.CoreV1().Pods("default").Create(ctx(t), p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		setPodRunning(t, ts, created, true)
	}
	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Create(ctx(t), makePDB("web", ptr(intstr.FromInt32(int32(pods-1)))), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status = status
	if _, err := ts.client.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx(t), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setPodRunning(t *testing.T, ts *testServer, pod *corev1.Pod, ready bool) {
	t.Helper()
	readiness := corev1.ConditionFalse
	if ready {
		readiness = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: readiness}}
	if _, err := ts.client.CoreV1().Pods("default").UpdateStatus(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func evict(t *testing.T, ts *testServer, pod string, dryRun ...string) error {
	t.Helper()
	return ts.client.PolicyV1().Evictions("default").Evict(ctx(t), &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod, Namespace: "default"},
		DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun},
	})
}

func wantBudgetRefusal(t *testing.T, err error, cause string) {
	t.Helper()
	if !apierrors.IsTooManyRequests(err) || err.Error() != "Cannot evict pod as it would violate the pod's disruption budget." {
		t.Fatalf("got %v, want 429 refusal", err)
	}
	if !apierrors.HasStatusCause(err, policyv1.DisruptionBudgetCause) {
		t.Fatalf("no DisruptionBudget cause: %#v", err)
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details.Causes[0].Message != cause {
		t.Fatalf("cause %+v, want %q", se.ErrStatus.Details, cause)
	}
}

func TestEvictionTakesADisruptionFromTheBudgetInOneWrite(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 3, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 1, CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3})

	// A dry run neither writes the budget nor deletes the pod.
	if err := evict(t, ts, "web-0", metav1.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.CoreV1().Pods("default").Get(ctx(t), "web-0", metav1.GetOptions{}); err != nil {
		t.Fatalf("dry run deleted the pod: %v", err)
	}
	if err := evict(t, ts, "web-0"); err != nil {
		t.Fatal(err)
	}
	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pdb.Status.DisruptedPods["web-0"]; pdb.Status.DisruptionsAllowed != 0 || !ok {
		t.Fatalf("budget after the eviction: %+v", pdb.Status)
	}
	if c := pdb.Status.Conditions; len(c) != 1 || c[0].Reason != policyv1.InsufficientPodsReason || c[0].Status != metav1.ConditionFalse {
		t.Fatalf("conditions %+v", c)
	}
	pod, err := ts.client.CoreV1().Pods("default").Get(ctx(t), "web-0", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod still there: %v %+v", err, pod)
	}

	wantBudgetRefusal(t, evict(t, ts, "web-1"), "The disruption budget web needs 2 healthy pods and has 3 currently")
	if _, err := ts.client.CoreV1().Pods("default").Get(ctx(t), "web-1", metav1.GetOptions{}); err != nil {
		t.Fatalf("refused eviction deleted the pod: %v", err)
	}
}

func TestEvictionWaitsForTheControllerToSeeTheBudget(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 2, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 0, DisruptionsAllowed: 1})
	wantBudgetRefusal(t, evict(t, ts, "web-0"), "The disruption budget web is still being processed by the server.")
}

func TestEvictionOfAPodWithTwoBudgetsIsRefused(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 2, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 1})
	if _, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Create(ctx(t), makePDB("other", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := evict(t, ts, "web-0")
	if !apierrors.IsInternalError(err) || err.Error() != "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." {
		t.Fatalf("got %v", err)
	}
}

func TestEvictionOfPodsTheBudgetDoesNotCount(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 2, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1})

	// A pending pod has disrupted nothing.
	pending, err := ts.client.CoreV1().Pods("default").Create(ctx(t), makePod("pending"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := evict(t, ts, pending.Name); err != nil {
		t.Fatalf("pending pod: %v", err)
	}
	// An unready running pod goes while the application is healthy
	// (IfHealthyBudget), without taking a disruption.
	web1, err := ts.client.CoreV1().Pods("default").Get(ctx(t), "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setPodRunning(t, ts, web1, false)
	if err := evict(t, ts, "web-1"); err != nil {
		t.Fatalf("unready pod: %v", err)
	}
	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pdb.Status.DisruptedPods) != 0 {
		t.Fatalf("disrupted pods %v", pdb.Status.DisruptedPods)
	}
	// The ready one is protected.
	wantBudgetRefusal(t, evict(t, ts, "web-0"), "The disruption budget web needs 1 healthy pods and has 1 currently")
}

func TestEvictionOfAnUnreadyPodUnderAnUnhealthyApplication(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 2, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, CurrentHealthy: 0, DesiredHealthy: 1})
	web0, err := ts.client.CoreV1().Pods("default").Get(ctx(t), "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setPodRunning(t, ts, web0, false)
	wantBudgetRefusal(t, evict(t, ts, "web-0"), "The disruption budget web needs 1 healthy pods and has 0 currently")

	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Spec.UnhealthyPodEvictionPolicy = ptr(policyv1.AlwaysAllow)
	if _, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Update(ctx(t), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := evict(t, ts, "web-0"); err != nil {
		t.Fatalf("AlwaysAllow: %v", err)
	}
}

func TestConcurrentEvictionsTakeOneDisruptionEach(t *testing.T) {
	ts := newTestServer(t)
	evictionFixture(t, ts, 4, policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 2, CurrentHealthy: 4, DesiredHealthy: 2, ExpectedPods: 4})
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- evict(t, ts, "web-"+string(rune('0'+i))) }()
	}
	evicted := 0
	for range 4 {
		switch err := <-errs; {
		case err == nil:
			evicted++
		case !apierrors.IsTooManyRequests(err):
			t.Fatalf("eviction: %v", err)
		}
	}
	pdb, err := ts.client.PolicyV1().PodDisruptionBudgets("default").Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if evicted != 2 || len(pdb.Status.DisruptedPods) != 2 || pdb.Status.DisruptionsAllowed != 0 {
		t.Fatalf("%d evicted, budget %+v; want 2 and both recorded", evicted, pdb.Status)
	}
}
