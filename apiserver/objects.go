package apiserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// key is where one object lives in storage.
func storageKey(r *registry.Resource, namespace, name string) string {
	if r.Namespaced {
		return storagePrefix(r, "") + namespace + "/" + name
	}
	return storagePrefix(r, "") + name
}

// prefix is the storage prefix of a collection: one namespace, or every
// namespace when namespace is empty. It always ends in "/".
func storagePrefix(r *registry.Resource, namespace string) string {
	group, resource := r.StorageGroup(), r.GVR.Resource
	if r.StoredAs != nil {
		group, resource = r.StoredAs.Group, r.StoredAs.Resource
	}
	p := "/registry/" + group + "/" + resource + "/"
	if r.Namespaced && namespace != "" {
		p += namespace + "/"
	}
	return p
}

// newObject returns an empty object of the resource's kind with its
// TypeMeta set.
func (s *Server) newObject(r *registry.Resource) (runtime.Object, error) {
	obj, err := s.scheme.New(r.GVK())
	if err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GVK())
	return obj, nil
}

// fromKV decodes a stored object and sets its resourceVersion from the
// key's ModRevision (the stored one is never trusted).
func (s *Server) fromKV(r *registry.Resource, kv storage.KeyValue) (runtime.Object, error) {
	var obj runtime.Object
	if r.StoredAs != nil {
		stored := r.StoredAs.NewStorage()
		if err := json.Unmarshal(kv.Value, stored); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		obj = r.StoredAs.FromStorage(stored)
	} else {
		var err error
		if obj, err = s.newObject(r); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(kv.Value, obj); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GVK())
	setResourceVersion(obj, kv.ModRevision)
	return obj, nil
}

// toStored encodes obj for storage, without its resourceVersion, in the
// resource's storage form.
func (s *Server) toStored(r *registry.Resource, obj runtime.Object) ([]byte, error) {
	if r.StoredAs != nil {
		obj = r.StoredAs.ToStorage(obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return json.Marshal(obj)
}

func setResourceVersion(obj runtime.Object, rev int64) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
}

// parseResourceVersion parses a resourceVersion given by a client.
func parseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %q", rv))
	}
	return n, nil
}

// structField returns the named top-level field (Spec, Status) of a typed
// object, or an invalid Value when the kind has none.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// copyField sets obj.<name> to from.<name> when both have it.
func copyField(obj, from runtime.Object, name string) {
	dst, src := structField(obj, name), structField(from, name)
	if dst.IsValid() && src.IsValid() && dst.CanSet() {
		dst.Set(src)
	}
}

// resetField sets obj.<name> to its zero value.
func resetField(obj runtime.Object, name string) {
	if f := structField(obj, name); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// fieldChanged reports whether obj.<name> differs semantically from old's.
func fieldChanged(obj, old runtime.Object, name string) bool {
	a, b := structField(obj, name), structField(old, name)
	if !a.IsValid() || !b.IsValid() {
		return false
	}
	return !equality.Semantic.DeepEqual(a.Interface(), b.Interface())
}

// accessor is meta.Accessor for objects known to carry ObjectMeta.
func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("apiserver: %T has no ObjectMeta", obj))
	}
	return m
}

func formatRevision(rev int64) string { return strconv.FormatInt(rev, 10) }
