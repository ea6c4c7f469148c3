package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
)

// addEventHandlers feeds the queue with pending pods and the cache with
// nodes and bound pods, and retries unschedulable pods on changes that may
// make them fit.
func (s *Scheduler) addEventHandlers() error {
	pods := s.informers.Core().V1().Pods()
	nodes := s.informers.Core().V1().Nodes()
	services := s.informers.Core().V1().Services()
	s.podLister = pods.Lister()
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onPodAdd,
		UpdateFunc: s.onPodUpdate,
		DeleteFunc: s.onPodDelete,
	}); err != nil {
		return err
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onNodeAdd,
		UpdateFunc: s.onNodeUpdate,
		DeleteFunc: s.onNodeDelete,
	}); err != nil {
		return err
	}
	s.synced = []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced, services.Informer().HasSynced}
	return nil
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// responsible reports whether pod is pending for this scheduler. Pods with
// scheduling gates wait outside the queue until the gates are removed, as
// upstream's SchedulingGates plugin keeps them.
func (s *Scheduler) responsible(pod *corev1.Pod) bool {
	if len(pod.Spec.SchedulingGates) > 0 {
		return false
	}
	name := pod.Spec.SchedulerName
	if name == "" {
		name = corev1.DefaultSchedulerName
	}
	return name == s.schedulerName && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !terminal(pod)
}

func (s *Scheduler) onPodAdd(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		if !terminal(pod) {
			s.cache.AddPod(pod)
		}
		s.queue.Delete(pod.UID)
	case s.responsible(pod) && !s.cache.IsAssumed(pod.UID):
		s.queue.Add(pod)
	}
}

func (s *Scheduler) onPodUpdate(oldObj, newObj any) {
	pod, ok := newObj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.Spec.NodeName != "":
		// Bound (by us or by someone else): count it, drop it from the
		// queue. A pod that finished frees its resources.
		s.queue.Delete(pod.UID)
		if terminal(pod) {
			s.cache.RemovePod(pod.UID)
			s.queue.MoveAllToActiveOrBackoff()
			return
		}
		s.cache.AddPod(pod)
	case s.responsible(pod):
		if !s.cache.IsAssumed(pod.UID) {
			s.queue.Update(pod)
		}
	default:
		s.queue.Delete(pod.UID)
	}
}

func (s *Scheduler) onPodDelete(obj any) {
	var pod *corev1.Pod
	switch t := obj.(type) {
	case *corev1.Pod:
		pod = t
	case cache.DeletedFinalStateUnknown:
		pod, _ = t.Obj.(*corev1.Pod)
	}
	if pod == nil {
		return
	}
	s.queue.Delete(pod.UID)
	if pod.Spec.NodeName != "" || s.cache.IsAssumed(pod.UID) {
		s.cache.RemovePod(pod.UID)
		s.queue.MoveAllToActiveOrBackoff()
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	s.cache.AddNode(node)
	s.queue.MoveAllToActiveOrBackoff()
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.AddNode(node)
	if schedulingPropertiesChanged(old, node) {
		s.queue.MoveAllToActiveOrBackoff()
	}
}

func (s *Scheduler) onNodeDelete(obj any) {
	var node *corev1.Node
	switch t := obj.(type) {
	case *corev1.Node:
		node = t
	case cache.DeletedFinalStateUnknown:
		node, _ = t.Obj.(*corev1.Node)
	}
	if node != nil {
		s.cache.RemoveNode(node.Name)
	}
}

// schedulingPropertiesChanged ignores heartbeats: only cordon, labels,
// taints, allocatable and the Ready status can make a pod fit.
func schedulingPropertiesChanged(old, node *corev1.Node) bool {
	return old.Spec.Unschedulable != node.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		readyStatus(old) != readyStatus(node)
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}
