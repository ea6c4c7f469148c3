package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// readDeleteOptions takes DeleteOptions from the body (JSON without a kind
// from kubectl, protobuf from typed clients) or else from the query.
func (s *Server) readDeleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_DeleteOptions(&q, &opts, nil); err != nil {
		return opts, apierrors.NewBadRequest(err.Error())
	}
	body, err := readBody(r)
	if err != nil {
		return opts, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return opts, nil
	}
	mediaType := requestMediaType(r)
	if mediaType == mediaJSON {
		opts = metav1.DeleteOptions{}
		if err := json.Unmarshal(body, &opts); err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions cannot be parsed: %v", err))
		}
		return opts, nil
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		return opts, errUnsupportedMediaType(mediaType, s.supportedBodyMediaTypes())
	}
	into := &metav1.DeleteOptions{}
	gvk := coreV1.WithKind("DeleteOptions")
	obj, _, err := info.Serializer.Decode(body, &gvk, into)
	if err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions cannot be parsed: %v", err))
	}
	decoded, ok := obj.(*metav1.DeleteOptions)
	if !ok {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("expected DeleteOptions, got %T", obj))
	}
	return *decoded, nil
}

// serveDelete answers DELETE on one object.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	opts, err := s.readDeleteOptions(r)
	if err != nil {
		return err
	}
	obj, deleted, err := s.deleteObject(r.Context(), t.res, t.namespace, t.name, opts)
	if err != nil {
		return err
	}
	if !deleted || t.res.ReturnDeletedObject {
		code := http.StatusOK
		//nolint:staticcheck // OrphanDependents is deprecated, but upstream still answers 202 for it.
		if !deleted && opts.OrphanDependents != nil && !*opts.OrphanDependents {
			code = http.StatusAccepted
		}
		return s.respond(w, r, t.res, code, obj)
	}
	status := &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Details: &metav1.StatusDetails{
			Name:  t.name,
			Group: t.res.GVR.Group,
			Kind:  t.res.GVR.Resource,
			UID:   accessor(obj).GetUID(),
		},
	}
	s.encode(w, http.StatusOK, mediaJSON, status)
	return nil
}

// deleteObject deletes one object as upstream's generic store does: it
// checks preconditions, gives pods their grace period, honours finalizers
// (adding the propagation policy's), and otherwise removes the key. It
// returns the object and whether it is gone from storage.
func (s *Server) deleteObject(ctx context.Context, res *registry.Resource, namespace, name string, opts metav1.DeleteOptions) (runtime.Object, bool, error) {
	dryRun, err := parseDryRun(opts.DryRun)
	if err != nil {
		return nil, false, err
	}
	if res.GVR == coreV1.WithResource("namespaces") && immortalNamespaces[name] {
		return nil, false, apierrors.NewForbidden(res.GroupResource(), name, errors.New("this namespace may not be deleted"))
	}
	//nolint:staticcheck // OrphanDependents is deprecated but still sent by old clients.
	if res.OrphanByDefault && opts.PropagationPolicy == nil && opts.OrphanDependents == nil {
		orphan := metav1.DeletePropagationOrphan
		opts.PropagationPolicy = &orphan
		warn(ctx, []string{res.OrphanWarning})
	}
	key := storageKey(res, namespace, name)
	for {
		kv, err := s.store.Get(ctx, key, 0)
		if err != nil {
			return nil, false, fromStorage(err, res, name)
		}
		obj, err := s.fromKV(res, kv)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		m := accessor(obj)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, false, apierrors.NewConflict(res.GroupResource(), name,
					fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(res.GroupResource(), name,
					fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		graceful, pending := s.markForDeletion(res, obj, opts)
		if dryRun {
			return obj, !pending, nil
		}
		if pending {
			if !graceful {
				// Nothing changed (already being deleted): answer as is.
				return obj, false, nil
			}
			value, err := s.toStored(res, obj)
			if err != nil {
				return nil, false, apierrors.NewInternalError(err)
			}
			stored, err := s.store.Update(ctx, key, value, kv.ModRevision)
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, false, fromStorage(err, res, name)
			}
			setResourceVersion(obj, stored.ModRevision)
			return obj, false, nil
		}
		deleted, err := s.store.Delete(ctx, key, kv.ModRevision)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, false, fromStorage(err, res, name)
		}
		setResourceVersion(obj, deleted.ModRevision)
		if res.Released != nil {
			res.Released(ctx, obj)
		}
		return obj, true, nil
	}
}

// markForDeletion decides whether obj can go now. When it cannot (grace
// period, finalizers, namespace content) it sets deletionTimestamp and
// friends on obj and returns pending; changed says whether obj was
// modified and must be written.
func (s *Server) markForDeletion(res *registry.Resource, obj runtime.Object, opts metav1.DeleteOptions) (changed, pending bool) {
	m := accessor(obj)
	finalizers := m.GetFinalizers()
	policy := opts.PropagationPolicy
	//nolint:staticcheck // OrphanDependents is deprecated but still sent by old clients.
	if policy == nil && opts.OrphanDependents != nil {
		p := metav1.DeletePropagationBackground
		if *opts.OrphanDependents {
			p = metav1.DeletePropagationOrphan
		}
		policy = &p
	}
	if policy != nil && m.GetDeletionTimestamp() == nil {
		switch *policy {
		case metav1.DeletePropagationForeground:
			finalizers = addFinalizer(removeFinalizer(finalizers, metav1.FinalizerOrphanDependents), metav1.FinalizerDeleteDependents)
		case metav1.DeletePropagationOrphan:
			finalizers = addFinalizer(removeFinalizer(finalizers, metav1.FinalizerDeleteDependents), metav1.FinalizerOrphanDependents)
		}
	}
	grace := s.gracePeriod(obj, opts)
	now := s.now()
	if grace > 0 {
		deadline := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		current := m.GetDeletionGracePeriodSeconds()
		if m.GetDeletionTimestamp() == nil || current == nil || grace < *current {
			m.SetDeletionTimestamp(&deadline)
			m.SetDeletionGracePeriodSeconds(&grace)
			m.SetFinalizers(finalizers)
			return true, true
		}
		return false, true
	}
	if len(finalizers) > 0 || hasNamespaceFinalizers(obj) {
		changed = !slices.Equal(finalizers, m.GetFinalizers())
		if m.GetDeletionTimestamp() == nil {
			t := metav1.NewTime(now)
			m.SetDeletionTimestamp(&t)
			changed = true
		}
		if g := m.GetDeletionGracePeriodSeconds(); g == nil || *g != 0 {
			zero := int64(0)
			m.SetDeletionGracePeriodSeconds(&zero)
			changed = true
		}
		m.SetFinalizers(finalizers)
		if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating {
			ns.Status.Phase = corev1.NamespaceTerminating
			changed = true
		}
		return changed, true
	}
	return false, false
}

// immortalNamespaces may not be deleted, as upstream's NamespaceLifecycle
// admission says.
var immortalNamespaces = map[string]bool{metav1.NamespaceDefault: true, metav1.NamespaceSystem: true, metav1.NamespacePublic: true}

// gracePeriod is how long a pod gets to stop; 0 for every other kind and for
// pods that never ran or have finished.
func (s *Server) gracePeriod(obj runtime.Object, opts metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		grace = 0
	}
	if grace < 0 {
		grace = 0
	}
	return grace
}

func addFinalizer(list []string, f string) []string {
	if slices.Contains(list, f) {
		return list
	}
	return append(slices.Clone(list), f)
}

func removeFinalizer(list []string, f string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == f })
}

// hasNamespaceFinalizers reports spec.finalizers of a Namespace, which keep
// it Terminating until the namespace controller has emptied it.
func hasNamespaceFinalizers(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// serveDeleteCollection answers DELETE on a collection: every object the
// selectors match is deleted as by a single DELETE.
func (s *Server) serveDeleteCollection(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	opts, err := s.readDeleteOptions(r)
	if err != nil {
		return err
	}
	q, err := s.parseListQuery(r, t.res, false)
	if err != nil {
		return err
	}
	list, err := s.listObjects(r.Context(), t.res, t.namespace, q)
	if err != nil {
		return err
	}
	var deleted []runtime.Object
	err = meta.EachListItem(list, func(item runtime.Object) error {
		m := accessor(item)
		obj, _, err := s.deleteObject(r.Context(), t.res, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		deleted = append(deleted, obj)
		return nil
	})
	if err != nil {
		return err
	}
	if err := meta.SetList(list, deleted); err != nil {
		return apierrors.NewInternalError(err)
	}
	return s.respond(w, r, t.res, http.StatusOK, list)
}
