package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// maxDisruptedPods is upstream's MaxDisruptedPodSize: past this many
// evictions the disruption controller has not yet seen, a budget refuses
// more.
const maxDisruptedPods = 2000

// evictionRetries bounds the retries of an eviction whose pod changed
// between read and delete (upstream's EvictionsRetry has 20 steps).
const evictionRetries = 20

// serveEviction is POST pods/<name>/eviction, as upstream's eviction REST:
// a pod that is not running (or is already being deleted) is deleted
// outright; otherwise the one PodDisruptionBudget that selects it must
// allow a disruption, which is taken from it (disruptionsAllowed - 1, the
// pod in disruptedPods) in one status write before the pod is deleted.
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	var createOpts metav1.CreateOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_CreateOptions(&q, &createOpts, nil); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	obj, err := s.readObject(w, r, policyv1.SchemeGroupVersion.WithKind("Eviction"))
	if err != nil {
		return err
	}
	eviction := obj.(*policyv1.Eviction)
	if eviction.Name != "" && eviction.Name != t.name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	opts, err := evictionDeleteOptions(eviction, createOpts)
	if err != nil {
		return err
	}
	if _, err := parseDryRun(opts.DryRun); err != nil {
		return err
	}
	refused, err := s.evict(r, t.namespace, t.name, opts)
	if err != nil {
		return err
	}
	if refused != nil {
		writeStatus(w, *refused)
		return nil
	}
	s.encode(w, http.StatusCreated, mediaJSON, createdStatus())
	return nil
}

// evictionDeleteOptions merges the request's dryRun into the eviction's
// delete options, as upstream's propagateDryRun.
func evictionDeleteOptions(eviction *policyv1.Eviction, create metav1.CreateOptions) (metav1.DeleteOptions, error) {
	if eviction.DeleteOptions == nil {
		return metav1.DeleteOptions{DryRun: create.DryRun}, nil
	}
	opts := *eviction.DeleteOptions.DeepCopy()
	switch {
	case len(opts.DryRun) == 0:
		opts.DryRun = create.DryRun
	case len(create.DryRun) > 0 && !slices.Equal(opts.DryRun, create.DryRun):
		return opts, apierrors.NewInternalError(fmt.Errorf("Non-matching dry-run options in request and content: %v and %v", create.DryRun, opts.DryRun))
	}
	return opts, nil
}

// evict deletes the pod if its budget allows it. refused is the Status to
// answer with when the eviction is refused without an error (upstream
// answers a pod with several budgets that way).
func (s *Server) evict(r *http.Request, namespace, name string, opts metav1.DeleteOptions) (refused *metav1.Status, err error) {
	ctx := r.Context()
	pods, _ := s.resources.lookup(coreV1.WithResource("pods"))
	rvUnset := opts.Preconditions == nil || opts.Preconditions.ResourceVersion == nil
	var pod *corev1.Pod
	for attempt := 0; ; attempt++ {
		obj, err := s.getStored(r.Context(), pods, namespace, name)
		if err != nil {
			return nil, err
		}
		pod = obj.(*corev1.Pod)
		if !canIgnoreBudget(pod) {
			break
		}
		// A pod that is not running has disrupted nothing by going.
		del := opts
		if pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && rvUnset {
			// Pending: pin the version so it cannot have become ready
			// meanwhile.
			del = withResourceVersion(opts, pod.ResourceVersion)
		}
		err = s.markDisruptedAndDelete(ctx, pods, namespace, name, del)
		if err == nil {
			return nil, nil
		}
		if !apierrors.IsConflict(err) || !rvUnset || attempt == evictionRetries {
			return nil, err
		}
	}

	budgets, err := s.budgetsOf(ctx, pod)
	if err != nil {
		return nil, err
	}
	if len(budgets) > 1 {
		return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}, nil
	}
	pinned := false
	if len(budgets) == 1 {
		pdb := budgets[0]
		if !isPodReady(pod) && unhealthyMayGo(pdb) {
			// The pod does not count as healthy, so taking it takes
			// nothing from the budget; pin its version so it has not
			// become ready since.
			pinned = true
		} else if err := s.takeDisruption(ctx, pdb, pod.Name, opts); err != nil {
			return nil, err
		}
		if pinned && rvUnset {
			opts = withResourceVersion(opts, pod.ResourceVersion)
		}
		err := s.markDisruptedAndDelete(ctx, pods, namespace, name, opts)
		if err != nil && apierrors.IsConflict(err) && pinned && rvUnset {
			// The pod changed, perhaps became ready: the client retries.
			return nil, budgetStaleError(pdb.Name)
		}
		return nil, err
	}
	return nil, s.markDisruptedAndDelete(ctx, pods, namespace, name, opts)
}

// canIgnoreBudget: evicting a pod that is not running (or already going)
// is a plain delete, as upstream's canIgnorePDB.
func canIgnoreBudget(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// unhealthyMayGo says whether an unready pod under pdb may be evicted
// without taking a disruption: always with AlwaysAllow, and with
// IfHealthyBudget (the default) while the application is not disrupted.
func unhealthyMayGo(pdb *policyv1.PodDisruptionBudget) bool {
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
		return true
	}
	return pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0
}

func isPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func withResourceVersion(opts metav1.DeleteOptions, rv string) metav1.DeleteOptions {
	opts = *opts.DeepCopy()
	if opts.Preconditions == nil {
		opts.Preconditions = &metav1.Preconditions{}
	}
	opts.Preconditions.ResourceVersion = &rv
	return opts
}

// budgetsOf returns the PodDisruptionBudgets of the pod's namespace whose
// selector matches it (an empty selector matches every pod, a null one
// none, an invalid one none).
func (s *Server) budgetsOf(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	res, _ := s.resources.lookup(policyV1.WithResource("poddisruptionbudgets"))
	list, err := s.listObjects(ctx, res, pod.Namespace, listQuery{labels: labels.Everything(), fields: fields.Everything()})
	if err != nil {
		return nil, err
	}
	var budgets []*policyv1.PodDisruptionBudget
	for i := range list.(*policyv1.PodDisruptionBudgetList).Items {
		pdb := &list.(*policyv1.PodDisruptionBudgetList).Items[i]
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		budgets = append(budgets, pdb)
	}
	return budgets, nil
}

// takeDisruption takes one disruption from pdb for the pod, as upstream's
// checkAndDecrement, in one status write that is retried against the
// fresh budget on conflict: 429 when the budget allows none or the
// controller has not seen its latest spec.
func (s *Server) takeDisruption(ctx context.Context, pdb *policyv1.PodDisruptionBudget, podName string, opts metav1.DeleteOptions) error {
	res, _ := s.resources.lookup(policyV1.WithResource("poddisruptionbudgets"))
	dryRun := len(opts.DryRun) > 0
	_, _, err := s.updateObject(ctx, updateRequest{
		res: res, namespace: pdb.Namespace, name: pdb.Name, subresource: "status", dryRun: dryRun,
		mutate: func(current runtime.Object) (runtime.Object, error) {
			pdb := current.(*policyv1.PodDisruptionBudget)
			if err := disruptionAllowed(pdb); err != nil {
				return nil, err
			}
			pdb.Status.DisruptionsAllowed--
			if pdb.Status.DisruptionsAllowed == 0 {
				setDisruptionAllowedCondition(pdb, metav1.NewTime(s.now()))
			}
			if pdb.Status.DisruptedPods == nil {
				pdb.Status.DisruptedPods = map[string]metav1.Time{}
			}
			// The controller counts the pod as gone from now on, and
			// forgets it if it is not gone in a while.
			pdb.Status.DisruptedPods[podName] = metav1.NewTime(s.now())
			pdb.ResourceVersion = ""
			return pdb, nil
		},
	})
	return err
}

// disruptionAllowed is upstream's check of a budget before an eviction.
func disruptionAllowed(pdb *policyv1.PodDisruptionBudget) error {
	gr := policyV1.WithResource("poddisruptionbudget").GroupResource()
	switch {
	case pdb.Status.ObservedGeneration < pdb.Generation:
		return budgetStaleError(pdb.Name)
	case pdb.Status.DisruptionsAllowed < 0:
		return apierrors.NewForbidden(gr, pdb.Name, errors.New("pdb disruptions allowed is negative"))
	case len(pdb.Status.DisruptedPods) > maxDisruptedPods:
		return apierrors.NewForbidden(gr, pdb.Name, errors.New("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	case pdb.Status.DisruptionsAllowed == 0:
		return budgetViolationError(0, fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently",
			pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
	}
	return nil
}

// budgetViolationError is upstream's 429 refusal of an eviction.
func budgetViolationError(retryAfterSeconds int, why string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", retryAfterSeconds)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: why})
	return err
}

// budgetStaleError refuses while the controller has not caught up.
func budgetStaleError(budget string) error {
	return budgetViolationError(10, fmt.Sprintf("The disruption budget %s is still being processed by the server.", budget))
}

// setDisruptionAllowedCondition is upstream's
// UpdateDisruptionAllowedCondition.
func setDisruptionAllowedCondition(pdb *policyv1.PodDisruptionBudget, now metav1.Time) {
	c := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.InsufficientPodsReason, ObservedGeneration: pdb.Status.ObservedGeneration, LastTransitionTime: now}
	if pdb.Status.DisruptionsAllowed > 0 {
		c.Status, c.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	if pdb.Status.Conditions == nil {
		pdb.Status.Conditions = []metav1.Condition{}
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, c)
}

// markDisruptedAndDelete gives the pod upstream's DisruptionTarget
// condition (unless dry run), honouring the delete preconditions, then
// deletes it.
func (s *Server) markDisruptedAndDelete(ctx context.Context, pods *registry.Resource, namespace, name string, opts metav1.DeleteOptions) error {
	if len(opts.DryRun) == 0 {
		updated, _, err := s.updateObject(ctx, updateRequest{
			res: pods, namespace: namespace, name: name, subresource: "status",
			mutate: func(current runtime.Object) (runtime.Object, error) {
				pod := current.(*corev1.Pod)
				if p := opts.Preconditions; p != nil {
					if p.UID != nil && *p.UID != "" && *p.UID != pod.UID {
						return nil, apierrors.NewConflict(pods.GroupResource(), name,
							fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, pod.UID))
					}
					if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
						return nil, apierrors.NewConflict(pods.GroupResource(), name,
							fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, pod.ResourceVersion))
					}
				}
				setPodCondition(pod, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting",
					LastTransitionTime: metav1.NewTime(s.now()), ObservedGeneration: pod.Generation})
				pod.ResourceVersion = ""
				return pod, nil
			},
		})
		if err != nil {
			return err
		}
		if opts.Preconditions != nil && opts.Preconditions.ResourceVersion != nil {
			// We changed the pod ourselves: the precondition moves along.
			opts = withResourceVersion(opts, accessor(updated).GetResourceVersion())
		}
	}
	_, _, err := s.deleteObject(ctx, pods, namespace, name, opts)
	return err
}
