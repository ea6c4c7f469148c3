package apiserver

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestPodCreateDefaultsBindingAndFieldSelectors(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx(t), makePod("p1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending || pod.Status.QOSClass != corev1.PodQOSBestEffort || pod.Spec.ServiceAccountName != "default" ||
		pod.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent || pod.Generation != 1 || len(pod.Spec.Tolerations) != 2 {
		t.Fatalf("pod defaults: %+v", pod)
	}
	if _, err := pods.Create(ctx(t), makePod("p2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p1"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}
	if err := pods.Bind(ctx(t), binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := pods.Bind(ctx(t), binding, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: %v", err)
	}
	onNode, err := pods.List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"})
	if err != nil || len(onNode.Items) != 1 || onNode.Items[0].Name != "p1" {
		t.Fatalf("spec.nodeName selector: %v %+v", err, onNode)
	}
	unscheduled, err := pods.List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=,status.phase=Pending"})
	if err != nil || len(unscheduled.Items) != 1 || unscheduled.Items[0].Name != "p2" {
		t.Fatalf("unscheduled selector: %v %+v", err, unscheduled)
	}
	byName, err := pods.List(ctx(t), metav1.ListOptions{FieldSelector: "metadata.name=p2"})
	if err != nil || len(byName.Items) != 1 {
		t.Fatalf("metadata.name selector: %v", err)
	}
}

func TestPodDeletionIsGracefulOnceScheduled(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx(t), makePod("unscheduled"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx(t), "unscheduled", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx(t), "unscheduled", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unscheduled pod should go at once: %v", err)
	}
	if _, err := pods.Create(ctx(t), makePod("running"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx(t), &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "running"}, Target: corev1.ObjectReference{Name: "n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx(t), "running", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := pods.Get(ctx(t), "running", metav1.GetOptions{})
	if err != nil || pod.DeletionTimestamp == nil || *pod.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("scheduled pod should wait for its kubelet: %v %+v", err, pod)
	}
	// The kubelet confirms with grace period 0.
	if err := pods.Delete(ctx(t), "running", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx(t), "running", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod not gone after grace 0: %v", err)
	}
}

func TestFinalizersHoldDeletionUntilRemoved(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cms.Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx(t), "held", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx(t), "held", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil || len(got.Finalizers) != 2 || got.Finalizers[1] != metav1.FinalizerDeleteDependents {
		t.Fatalf("object with finalizers: %v %+v", err, got)
	}
	got.Finalizers = nil
	if _, err := cms.Update(ctx(t), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx(t), "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("object should be gone once finalizers are removed: %v", err)
	}
}

func TestNamespaceDeletionTerminatesAndRefusesNewContent(t *testing.T) {
	ts := newTestServer(t)
	nss := ts.client.CoreV1().Namespaces()
	if _, err := nss.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nss.Delete(ctx(t), "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nss.Get(ctx(t), "team", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace: %v %+v", err, ns)
	}
	_, err = ts.client.CoreV1().ConfigMaps("team").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "unable to create new content in namespace team because it is being terminated") {
		t.Fatalf("create in terminating namespace: %v", err)
	}
	ns.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx(t), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nss.Get(ctx(t), "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace should be gone after finalize: %v", err)
	}
}

func TestProtobufRequestBodiesAreDecoded(t *testing.T) {
	ts := newTestServer(t)
	config := rest.CopyConfig(ts.config)
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	pods := client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx(t), makePod("proto"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("protobuf create: %v", err)
	}
	pod.Labels["v"] = "2"
	if _, err := pods.Update(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("protobuf update: %v", err)
	}
	list, err := pods.List(ctx(t), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Labels["v"] != "2" {
		t.Fatalf("protobuf list: %v", err)
	}
	if err := pods.Delete(ctx(t), "proto", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatalf("protobuf delete: %v", err)
	}
}

func TestListPaginationFollowsContinue(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	for i := range 7 {
		labels := map[string]string{"even": fmt.Sprint(i%2 == 0)}
		if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name     string
		selector string
		want     int
	}{{"without selector", "", 7}, {"with selector", "even=true", 4}} {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			opts := metav1.ListOptions{Limit: 3, LabelSelector: tt.selector}
			var firstRV string
			for pages := 0; ; pages++ {
				page, err := cms.List(ctx(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Items) > 3 {
					t.Fatalf("page of %d items with limit 3", len(page.Items))
				}
				if firstRV == "" {
					firstRV = page.ResourceVersion
				} else if page.ResourceVersion != firstRV {
					t.Fatalf("pages read at different revisions %s %s", firstRV, page.ResourceVersion)
				}
				for _, cm := range page.Items {
					names = append(names, cm.Name)
				}
				if page.Continue == "" {
					break
				}
				opts.Continue = page.Continue
			}
			if len(names) != tt.want {
				t.Fatalf("got %v", names)
			}
		})
	}
	resp := ts.do("GET", "/api/v1/namespaces/default/configmaps?limit=2&continue=garbage", "", "")
	if resp.code != 400 {
		t.Fatalf("bad continue token: %d", resp.code)
	}
}

func TestDeleteCollectionBySelector(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	for i, team := range []string{"a", "a", "b"} {
		if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm", i), Labels: map[string]string{"team": team}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "team=a"}); err != nil {
		t.Fatal(err)
	}
	left, _ := cms.List(ctx(t), metav1.ListOptions{})
	if len(left.Items) != 1 || left.Items[0].Name != "cm2" {
		t.Fatalf("left: %+v", left.Items)
	}
}

func TestPodSpecIsImmutableExceptImages(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx(t), makePod("p"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].Image = "nginx:1.28"
	pod.Labels["edited"] = "true"
	if pod, err = pods.Update(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("image change: %v", err)
	}
	if pod.Generation != 2 {
		t.Fatalf("generation after image change: %d", pod.Generation)
	}
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err = pods.Update(ctx(t), pod, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`") {
		t.Fatalf("restartPolicy change: %v", err)
	}
}

func TestPodValidationMessages(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   string
	}{
		{"mount of a missing volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, `spec.containers[0].volumeMounts[0].name: Not found: "data"`},
		{"bad env name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "1BAD"}}
		}, `spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable name must consist of`},
		{"request above limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")},
			}
		}, `spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 1`},
		{"missing image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, `spec.containers[0].image: Required value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := makePod("bad")
			tt.mutate(pod)
			_, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLimitsWithoutRequestsMakeAGuaranteedPod(t *testing.T) {
	ts := newTestServer(t)
	pod := makePod("g")
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("500m"), corev1.ResourceMemory: mustQuantity("64Mi")}
	got, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.QOSClass != corev1.PodQOSGuaranteed || got.Spec.Containers[0].Resources.Requests.Cpu().String() != "500m" {
		t.Fatalf("qos %s requests %v", got.Status.QOSClass, got.Spec.Containers[0].Resources.Requests)
	}
}

func TestBindingWithAnotherPodsUIDIsAConflict(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	pod, err := pods.Create(ctx(t), makePod("p"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "not-the-pod"}, Target: corev1.ObjectReference{Name: "n"}}
	err = pods.Bind(ctx(t), stale, metav1.CreateOptions{})
	want := fmt.Sprintf("Precondition failed: UID in precondition: not-the-pod, UID in object meta: %s", pod.UID)
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("bind with a wrong uid: %v", err)
	}
	if got, _ := pods.Get(ctx(t), "p", metav1.GetOptions{}); got.Spec.NodeName != "" {
		t.Fatalf("bound anyway to %q", got.Spec.NodeName)
	}
	right := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: pod.UID}, Target: corev1.ObjectReference{Name: "n"}}
	if err := pods.Bind(ctx(t), right, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind with the pod's uid: %v", err)
	}
}

func TestSchedulingGatesMayOnlyBeRemoved(t *testing.T) {
	ts := newTestServer(t)
	pods := ts.client.CoreV1().Pods("default")
	gated := makePod("gated")
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/a"}, {Name: "example.com/b"}}
	pod, err := pods.Create(ctx(t), gated, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: "example.com/c"})
	_, err = pods.Update(ctx(t), pod, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.schedulingGates[2].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/c'") {
		t.Fatalf("adding a gate: %v", err)
	}
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/b"}}
	if pod, err = pods.Update(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("removing a gate: %v", err)
	}
	pod.Spec.SchedulingGates = nil
	if pod, err = pods.Update(ctx(t), pod, metav1.UpdateOptions{}); err != nil || len(pod.Spec.SchedulingGates) != 0 {
		t.Fatalf("removing the last gate: %v", err)
	}
}
