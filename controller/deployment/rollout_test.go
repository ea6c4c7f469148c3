package deployment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/deployment"
)

// kubelet stands in for the kubelet in these tests: it marks every pod
// ready as soon as it sees it (when enabled), and checks invariants on
// every pod state it observes.
type kubelet struct {
	t      *testing.T
	client kubernetes.Interface
	store  cache.Store
	events chan struct{}

	mu         sync.Mutex
	markReady  bool
	minReady   int // checked once armed
	armed      bool
	maxPods    int
	violations []string
	sawBoth    bool // pods of two templates at once
}

func startKubelet(t *testing.T, client kubernetes.Interface) *kubelet {
	k := &kubelet{t: t, client: client, events: make(chan struct{}, 1000), markReady: true, minReady: -1, maxPods: -1}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Pods().Informer()
	k.store = inf.GetStore()
	notify := func(any) {
		select {
		case k.events <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(_, o any) { notify(o) }, DeleteFunc: notify,
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-k.events:
				k.observe(ctx)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return k
}

func (k *kubelet) observe(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ready, total int
	hashes := map[string]bool{}
	var toMark []*corev1.Pod
	for _, o := range k.store.List() {
		p := o.(*corev1.Pod)
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		hashes[p.Labels[deployment.PodTemplateHashLabel]] = true
		if podReady(p) {
			ready++
		} else if k.markReady {
			toMark = append(toMark, p)
		}
	}
	if len(hashes) > 1 {
		k.sawBoth = true
	}
	if k.armed && ready < k.minReady {
		k.violations = append(k.violations, fmt.Sprintf("%d ready pods of %d", ready, total))
	}
	if k.maxPods >= 0 && total > k.maxPods {
		k.violations = append(k.violations, fmt.Sprintf("%d pods, more than %d", total, k.maxPods))
	}
	for _, p := range toMark {
		if err := markReady(ctx, k.client, p); err != nil && ctx.Err() == nil {
			// A pod deleted meanwhile, or a restarting server: the next
			// event retries.
			k.t.Logf("marking %s ready: %v", p.Name, err)
			select {
			case k.events <- struct{}{}:
			default:
			}
		}
	}
}

func (k *kubelet) set(f func(k *kubelet)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f(k)
}

func (k *kubelet) check() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, v := range k.violations {
		k.t.Errorf("invariant broken: %s", v)
	}
}

func setImage(t *testing.T, client kubernetes.Interface, name, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":%q}]}}}}`, image)
	if _, err := client.AppsV1().Deployments("default").Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitRolledOut(t *testing.T, client kubernetes.Interface, name string, image string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, "rollout of "+image, 20*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		if d, err = getDeployment(ctx, client, name); err != nil {
			return false, err
		}
		if !rolledOut(d) || d.Spec.Template.Spec.Containers[0].Image != image {
			return false, nil
		}
		pods, err := listPods(ctx, client, "app=nginx")
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return false, nil
			}
		}
		return len(pods) == int(*d.Spec.Replicas), nil
	})
	return d
}

func TestScaleTo5(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	startKubelet(t, s.Client)
	ctx := context.Background()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, nginx(2).obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, "nginx-deployment", "nginx:latest")
	// kubectl scale --replicas=5 goes through the scale subresource.
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "nginx-deployment", Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if _, err := s.Client.AppsV1().Deployments("default").UpdateScale(ctx, "nginx-deployment", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, "nginx-deployment", "nginx:latest")
	rss, err := listReplicaSets(ctx, s.Client)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 {
		t.Fatalf("%d ReplicaSets after scaling, want 1", len(rss))
	}
	rs := rss[0]
	if *rs.Spec.Replicas != 5 || rs.Annotations[deployment.DesiredReplicasAnnotation] != "5" || rs.Annotations[deployment.MaxReplicasAnnotation] != "7" {
		t.Errorf("ReplicaSet replicas %d, annotations %v", *rs.Spec.Replicas, rs.Annotations)
	}
	waitForEvent(t, s.Client, "ScalingReplicaSet", "Scaled up replica set "+rs.Name+" from 2 to 5")
}

func TestRollingUpdateKeepsTwoReady(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	k := startKubelet(t, s.Client)
	ctx := context.Background()
	d := nginx(2).rolling(intstr.FromString("25%"), intstr.FromInt32(0)).obj()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	k.set(func(k *kubelet) { k.armed, k.minReady, k.maxPods = true, 2, 3 })
	setImage(t, s.Client, d.Name, "nginx:1.27")
	got := waitRolledOut(t, s.Client, d.Name, "nginx:1.27")
	k.check()
	if got.Annotations[deployment.RevisionAnnotation] != "2" {
		t.Errorf("revision %q after one update, want 2", got.Annotations[deployment.RevisionAnnotation])
	}
	rss, err := listReplicaSets(ctx, s.Client)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets, want the old one (kept for history) and the new one", len(rss))
	}
	for _, rs := range rss {
		want := int32(0)
		if rs.Spec.Template.Spec.Containers[0].Image == "nginx:1.27" {
			want = 2
		}
		if *rs.Spec.Replicas != want || rs.Status.Replicas != want {
			t.Errorf("ReplicaSet %s (%s) replicas %d/%d, want %d", rs.Name, rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, rs.Status.Replicas, want)
		}
	}
}

// undo does what kubectl rollout undo does (client-side since 1.32): copy
// the template of the ReplicaSet of the previous revision into the
// Deployment.
func undo(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	d, err := getDeployment(ctx, client, name)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := listReplicaSets(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	var prev *appsv1.ReplicaSet
	var prevRev int
	cur := d.Annotations[deployment.RevisionAnnotation]
	for i := range rss {
		var rev int
		fmt.Sscan(rss[i].Annotations[deployment.RevisionAnnotation], &rev)
		if rss[i].Annotations[deployment.RevisionAnnotation] != cur && rev > prevRev {
			prev, prevRev = &rss[i], rev
		}
	}
	if prev == nil {
		t.Fatal("no previous revision")
	}
	template := prev.Spec.Template.DeepCopy()
	delete(template.Labels, deployment.PodTemplateHashLabel)
	patch, _ := json.Marshal([]map[string]any{{"op": "replace", "path": "/spec/template", "value": template}})
	if _, err := client.AppsV1().Deployments("default").Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRolloutUndo(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	startKubelet(t, s.Client)
	ctx := context.Background()
	d := nginx(2).obj()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	setImage(t, s.Client, d.Name, "nginx:1.27")
	waitRolledOut(t, s.Client, d.Name, "nginx:1.27")
	undo(t, s.Client, d.Name)
	got := waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	if got.Annotations[deployment.RevisionAnnotation] != "3" {
		t.Errorf("deployment revision %q after undo, want 3", got.Annotations[deployment.RevisionAnnotation])
	}
	rss, err := listReplicaSets(ctx, s.Client)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets after undo, want 2 (the first one is reused)", len(rss))
	}
	for _, rs := range rss {
		if rs.Name != "nginx-deployment-585c5579f6" {
			continue
		}
		if rs.Annotations[deployment.RevisionAnnotation] != "3" || rs.Annotations[deployment.RevisionHistoryAnnotation] != "1" {
			t.Errorf("reused ReplicaSet annotations %v, want revision 3, revision-history 1", rs.Annotations)
		}
		if *rs.Spec.Replicas != 2 {
			t.Errorf("reused ReplicaSet has %d replicas", *rs.Spec.Replicas)
		}
	}
}

func TestRecreateStopsOldPodsFirst(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	k := startKubelet(t, s.Client)
	ctx := context.Background()
	d := nginx(3).recreate().obj()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	k.set(func(k *kubelet) { k.maxPods = 3 })
	setImage(t, s.Client, d.Name, "nginx:1.27")
	waitRolledOut(t, s.Client, d.Name, "nginx:1.27")
	k.check()
	k.set(func(k *kubelet) {
		if k.sawBoth {
			t.Error("pods of the old and the new template existed at the same time")
		}
	})
}

func TestAPIServerRestartMidRollout(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	k := startKubelet(t, s.Client)
	ctx := context.Background()
	d := nginx(4).rolling(intstr.FromInt32(1), intstr.FromInt32(0)).obj()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	// Hold new pods not ready, so the rollout stops after its first step.
	k.set(func(k *kubelet) { k.markReady = false; k.maxPods = 5 })
	setImage(t, s.Client, d.Name, "nginx:1.27")
	waitFor(t, "the first surge pod", 10*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := listPods(ctx, s.Client, "app=nginx")
		return len(pods) == 5, err
	})
	s.Restart()
	k.set(func(k *kubelet) { k.markReady = true })
	k.events <- struct{}{}
	waitRolledOut(t, s.Client, d.Name, "nginx:1.27")
	k.check()
	pods, err := listPods(ctx, s.Client, "app=nginx")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 4 {
		t.Errorf("%d pods after the rollout, want 4", len(pods))
	}
}

func TestDeleteWithoutGarbageCollectorLeavesReplicaSetsAndPods(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	startKubelet(t, s.Client)
	ctx := context.Background()
	d := nginx(2).obj()
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	if err := s.Client.AppsV1().Deployments("default").Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The ReplicaSet keeps its pods: deleting one brings it back.
	pods, err := listPods(ctx, s.Client, "app=nginx")
	if err != nil || len(pods) != 2 {
		t.Fatalf("%d pods right after the delete (%v)", len(pods), err)
	}
	if err := s.Client.CoreV1().Pods("default").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a replacement pod", 10*time.Second, func(ctx context.Context) (bool, error) {
		now, err := listPods(ctx, s.Client, "app=nginx")
		if err != nil || len(now) != 2 {
			return false, err
		}
		for _, p := range now {
			if p.Name == pods[0].Name {
				return false, nil
			}
		}
		return true, nil
	})
	rss, err := listReplicaSets(ctx, s.Client)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 || *rss[0].Spec.Replicas != 2 {
		t.Fatalf("ReplicaSets after deleting the Deployment: %d", len(rss))
	}
	if _, err := getDeployment(ctx, s.Client, d.Name); err == nil {
		t.Error("the Deployment is still there")
	}
}

var _ = corev1.PodRunning

// Nothing changes after the pods were created (they never get ready), yet
// the Deployment reports the missed deadline: the controller wakes itself.
func TestProgressDeadlineExceededWithoutFurtherEvents(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	d := nginx(2).obj()
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
	if _, err := s.Client.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ProgressDeadlineExceeded", 15*time.Second, func(ctx context.Context) (bool, error) {
		got, err := getDeployment(ctx, s.Client, d.Name)
		if err != nil {
			return false, err
		}
		c := condition(got, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" &&
			c.Message == `ReplicaSet "nginx-deployment-585c5579f6" has timed out progressing.`, nil
	})
}

// With minReadySeconds, ready pods become available only later, with no
// event to say so; the rollout still completes.
func TestMinReadySecondsDelaysAvailability(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	startKubelet(t, s.Client)
	d := nginx(2).obj()
	d.Spec.MinReadySeconds = 2
	created := time.Now()
	if _, err := s.Client.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready pods", 10*time.Second, func(ctx context.Context) (bool, error) {
		got, err := getDeployment(ctx, s.Client, d.Name)
		return err == nil && got.Status.ReadyReplicas == 2, err
	})
	got := waitRolledOut(t, s.Client, d.Name, "nginx:latest")
	if since := time.Since(created); since < 2*time.Second {
		t.Errorf("available after %v, before minReadySeconds", since)
	}
	rss, err := listReplicaSets(context.Background(), s.Client)
	if err != nil || len(rss) != 1 || rss[0].Spec.MinReadySeconds != 2 {
		t.Fatalf("ReplicaSets %v (%v): want one with minReadySeconds 2", len(rss), err)
	}
	if got.Status.AvailableReplicas != 2 {
		t.Errorf("status %+v", got.Status)
	}
}
