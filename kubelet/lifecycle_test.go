package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/images"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// podEvents lists the pod's events as `kubectl describe pod` does: by the
// involved object's name, namespace and UID.
func (n *testNode) podEvents(p *corev1.Pod) []corev1.Event {
	n.t.Helper()
	sel := fields.Set{"involvedObject.name": p.Name, "involvedObject.namespace": p.Namespace, "involvedObject.uid": string(p.UID)}.AsSelector().String()
	list, err := n.client.CoreV1().Events(p.Namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		n.t.Fatal(err)
	}
	return list.Items
}

// eventLine is an event as describe shows it, with where it came from.
func eventLine(e corev1.Event) string {
	return fmt.Sprintf("%s %s %s: %s (from %s/%s, reporting %s)", e.Type, e.Reason, e.InvolvedObject.FieldPath, e.Message, e.Source.Component, e.Source.Host, e.ReportingController)
}

// waitEvents waits until the pod has an event for each of want (event
// lines as eventLine writes them, matched by prefix) and returns them all.
func (n *testNode) waitEvents(p *corev1.Pod, want ...string) []string {
	n.t.Helper()
	var lines []string
	missing := ""
	err := waitFor(30*time.Second, func() bool {
		lines = lines[:0]
		for _, e := range n.podEvents(p) {
			lines = append(lines, eventLine(e))
		}
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, w)
			}
			if !found {
				missing = w
				return false
			}
		}
		return true
	})
	if err != nil {
		n.t.Fatalf("no event %q among:\n%s", missing, strings.Join(lines, "\n"))
	}
	return lines
}

func TestPodStartIsRecordedInEvents(t *testing.T) {
	n := startNode(t, nil)
	p := n.create(newPod("evented", testimage.BusyboxRef).command("sleep", "3600").obj())
	n.waitPod("evented", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	from := " (from kubelet/" + nodeName + ", reporting kubelet)"
	n.waitEvents(p,
		`Normal Pulled spec.containers{main}: Container image "`+testimage.BusyboxRef+`" already present on machine`+from,
		"Normal Created spec.containers{main}: Created container: main"+from,
		"Normal Started spec.containers{main}: Started container main"+from,
	)
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "evented", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	n.waitEvents(p, "Normal Killing spec.containers{main}: Stopping container main"+from)
}

func TestPostStartHookRunsBeforeTheContainerCountsAsRunning(t *testing.T) {
	n := startNode(t, nil)
	dir := t.TempDir()
	b := newPod("hooked", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1)) // sleep ignores SIGTERM
	b.p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	c := &b.p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	// The hook takes a while, so a status written before it returned
	// would be seen before the file exists.
	c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "sleep 1; echo done > /data/hook"},
	}}}
	n.create(b.obj())
	p := n.waitPod("hooked", 60*time.Second, "Running", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Running != nil
	})
	data, err := os.ReadFile(filepath.Join(dir, "hook"))
	if err != nil || string(data) != "done\n" {
		t.Fatalf("container reported running before its postStart hook finished: hook file %q, %v", data, err)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || !*cs.Started {
		t.Errorf("restarts %d started %v, want 0 and true", cs.RestartCount, *cs.Started)
	}
}

func TestFailingPostStartHookKillsAndRestartsTheContainer(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("badhook", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	b.p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sh", "-c", "echo cannot; exit 7"},
	}}}
	p := n.create(b.obj())
	p = n.waitPod("badhook", 60*time.Second, "restarted after its hook failed", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Waiting != nil && cs[0].LastTerminationState.Terminated != nil
	})
	cs := p.Status.ContainerStatuses[0]
	switch w := cs.State.Waiting; w.Reason {
	case "PostStartHookError":
		want := `Exec lifecycle hook ([sh -c echo cannot; exit 7]) for Container "main" in Pod "badhook_default(` + string(p.UID) + `)" failed - error: command 'sh -c echo cannot; exit 7' exited with 7: cannot`
		if !strings.HasPrefix(w.Message, want) {
			t.Errorf("waiting message %q, want it to start %q", w.Message, want)
		}
	case "CrashLoopBackOff":
	default:
		t.Errorf("waiting %+v, want PostStartHookError or CrashLoopBackOff", w)
	}
	if cs.Ready || *cs.Started {
		t.Errorf("ready %v started %v, want neither", cs.Ready, *cs.Started)
	}
	n.waitEvents(p,
		"Warning FailedPostStartHook spec.containers{main}: PostStartHook failed",
		"Normal Killing spec.containers{main}: FailedPostStartHook",
	)
}

func TestMissingConfigMapIsAFailedMountEvent(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("nomount", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.Volumes = []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}}
	p := n.create(b.obj())
	n.waitEvents(p, `Warning FailedMount : MountVolume.SetUp failed: configmap "absent" not found`)
}

func TestDeletingAPodEndsItsRunningPostStartHook(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("slowhook", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	b.p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"sleep", "600"},
	}}}
	p := n.create(b.obj())
	// Started comes before the hook runs.
	n.waitEvents(p, "Normal Started spec.containers{main}: Started container main")
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "slowhook", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Gone within the grace period's order of magnitude, not the hook's.
	n.waitGone("slowhook")
	for _, l := range n.waitEvents(p) {
		if strings.Contains(l, "FailedPostStartHook") {
			t.Errorf("a hook ended by the deletion counts as failed: %s", l)
		}
	}
}

// A sidecar (an init container with restartPolicy Always) starts before
// the init containers after it, runs beside the app container and is
// stopped when the pod completes.
func TestSidecarRunsBesideTheAppContainer(t *testing.T) {
	n := startNode(t, nil)
	dir := t.TempDir()
	b := newPod("sidecar", testimage.BusyboxRef).command("sh", "-c", "cat /data/side").restartPolicy(corev1.RestartPolicyNever)
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	b.p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	b.p.Spec.Containers[0].VolumeMounts = mounts
	always := corev1.ContainerRestartPolicyAlways
	b.p.Spec.InitContainers = []corev1.Container{
		{
			Name: "side", Image: testimage.BusyboxRef, ImagePullPolicy: corev1.PullNever, RestartPolicy: &always, VolumeMounts: mounts,
			Command: []string{"sh", "-c", "echo up > /data/side; exec sleep 3600"},
			// Started only once it has written its file.
			StartupProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/data/side"}}},
				PeriodSeconds: 1, FailureThreshold: 30,
			},
		},
		{Name: "after", Image: testimage.BusyboxRef, ImagePullPolicy: corev1.PullNever, VolumeMounts: mounts, Command: []string{"test", "-e", "/data/side"}},
	}
	p := n.create(b.obj())
	done := n.waitPod("sidecar", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if st := done.Status.ContainerStatuses[0].State.Terminated; st == nil || st.ExitCode != 0 {
		t.Errorf("app container %+v, want exit 0", done.Status.ContainerStatuses[0].State)
	}
	if st := done.Status.InitContainerStatuses[1].State.Terminated; st == nil || st.ExitCode != 0 {
		t.Errorf("init container after the sidecar: %+v, want exit 0", done.Status.InitContainerStatuses[1].State)
	}
	data, err := os.ReadFile(filepath.Join(n.logDir, "default_sidecar_"+string(p.UID), "main", "0.log"))
	if err != nil || !strings.Contains(string(data), " up\n") {
		t.Errorf("app container's log %q (%v), want the sidecar's word", data, err)
	}
	// The completed pod's sidecar is stopped.
	if err := waitFor(30*time.Second, func() bool { return len(n.runningTasks()) == 0 }); err != nil {
		t.Errorf("tasks still running after the pod completed: %v", n.runningTasks())
	}
}

// runningTasks lists the containers on the node whose task runs.
func (n *testNode) runningTasks() []string {
	c, err := client.New(kubelet.ContainerdAddress(n.dataDir), client.WithTimeout(time.Second))
	if err != nil {
		return []string{err.Error()}
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), images.Namespace), 5*time.Second)
	defer cancel()
	cs, err := c.Containers(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var running []string
	for _, x := range cs {
		task, err := x.Task(ctx, nil)
		if err != nil {
			continue
		}
		if st, err := task.Status(ctx); err == nil && st.Status == client.Running {
			running = append(running, x.ID())
		}
	}
	return running
}

// On deletion the app container stops first, its sidecar after it.
func TestSidecarOutlivesTheAppContainerOnDeletion(t *testing.T) {
	n := startNode(t, nil)
	dir := t.TempDir()
	b := newPod("sidestop", testimage.BusyboxRef).command("sh", "-c",
		`trap 'if [ -e /data/side-alive ]; then echo sidecar-alive > /data/app-saw; else echo sidecar-gone > /data/app-saw; fi; exit 0' TERM; while true; do sleep 0.1; done`)
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(10))
	b.p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	b.p.Spec.Containers[0].VolumeMounts = mounts
	always := corev1.ContainerRestartPolicyAlways
	b.p.Spec.InitContainers = []corev1.Container{{
		Name: "side", Image: testimage.BusyboxRef, ImagePullPolicy: corev1.PullNever, RestartPolicy: &always, VolumeMounts: mounts,
		Command: []string{"sh", "-c", `touch /data/side-alive; trap 'rm /data/side-alive; exit 0' TERM; while true; do sleep 0.1; done`},
	}}
	n.create(b.obj())
	n.waitPod("sidestop", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "sidestop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitGone("sidestop")
	if data, err := os.ReadFile(filepath.Join(dir, "app-saw")); err != nil || string(data) != "sidecar-alive\n" {
		t.Errorf("when the app container got SIGTERM: %q (%v), want its sidecar alive", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "side-alive")); err == nil {
		t.Errorf("the sidecar did not get its SIGTERM")
	}
}

func TestPodPastItsActiveDeadlineFails(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("deadline", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	b.p.Spec.ActiveDeadlineSeconds = ptr(int64(2))
	p := n.create(b.obj())
	failed := n.waitPod("deadline", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if failed.Status.Reason != "DeadlineExceeded" || failed.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("reason %q message %q", failed.Status.Reason, failed.Status.Message)
	}
	if st := failed.Status.ContainerStatuses[0]; st.State.Terminated == nil || st.Ready {
		t.Errorf("container %+v, want terminated", st.State)
	}
	n.waitEvents(p, "Normal DeadlineExceeded : Pod was active on the node longer than the specified deadline")
	if err := waitFor(30*time.Second, func() bool { return len(n.runningTasks()) == 0 }); err != nil {
		t.Errorf("tasks still running: %v", n.runningTasks())
	}
}
