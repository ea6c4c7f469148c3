package core

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// supportedVolumeTypes are the volume sources the kubelet provides.
var supportedVolumeTypes = map[string]bool{
	"emptyDir": true, "hostPath": true, "configMap": true, "secret": true, "downwardAPI": true, "projected": true,
}

// supportedProjections are the projected volume sources the kubelet
// provides.
var supportedProjections = map[string]bool{
	"configMap": true, "secret": true, "downwardAPI": true, "serviceAccountToken": true,
}

const (
	supportedVolumeList     = "emptyDir, hostPath, configMap, secret, downwardAPI and projected"
	supportedProjectionList = "configMap, secret, downwardAPI and serviceAccountToken"
)

// ValidateVolumeSupport refuses volumes this cluster cannot provide,
// rather than letting the kubelet run the pod without them. old is the
// stored pod spec on an update (nil on create): a volume it already has
// is kept as it is, so an object stored before this check is never stuck.
func ValidateVolumeSupport(spec, old *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if old != nil && hasVolume(old.Volumes, v) {
			continue
		}
		vp := path.Child("volumes").Index(i)
		typ := setFieldName(reflect.ValueOf(v.VolumeSource))
		if typ != "" && !supportedVolumeTypes[typ] {
			errs = append(errs, field.Forbidden(vp.Child(typ),
				fmt.Sprintf("this cluster cannot provide %s volumes yet; supported volume types: %s", typ, supportedVolumeList)))
		}
		if v.Projected == nil {
			continue
		}
		for j, src := range v.Projected.Sources {
			for _, typ := range setFieldNames(reflect.ValueOf(src)) {
				if !supportedProjections[typ] {
					errs = append(errs, field.Forbidden(vp.Child("projected", "sources").Index(j).Child(typ),
						fmt.Sprintf("this cluster cannot provide %s projections yet; supported projections: %s", typ, supportedProjectionList)))
				}
			}
		}
	}
	return errs
}

// hasVolume reports whether volumes holds v unchanged.
func hasVolume(volumes []corev1.Volume, v *corev1.Volume) bool {
	for i := range volumes {
		if volumes[i].Name == v.Name && apiequality.Semantic.DeepEqual(volumes[i], *v) {
			return true
		}
	}
	return false
}

// setFieldName is the JSON name of the first non-nil pointer field of the
// struct s ("" when none is set).
func setFieldName(s reflect.Value) string {
	names := setFieldNames(s)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// setFieldNames are the JSON names of the non-nil pointer fields of the
// struct s, in field order.
func setFieldNames(s reflect.Value) []string {
	var names []string
	for i := range s.NumField() {
		f := s.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(s.Type().Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}
