package apiserver

import (
	"reflect"
	"strings"

	quantity "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// OpenAPI component schemas are built by reflection from the Go types of
// k8s.io/api, with descriptions from their generated SwaggerDoc methods,
// so `kubectl explain` can walk them. They carry no patch strategies: the
// documents declare no strategic-merge request bodies, so kubectl keeps
// computing strategic merge patches from its own compiled-in types.

// swaggerDoc is implemented (on values) by every k8s.io/api type.
type swaggerDoc interface{ SwaggerDoc() map[string]string }

var (
	timeType        = reflect.TypeFor[metav1.Time]()
	microTimeType   = reflect.TypeFor[metav1.MicroTime]()
	durationType    = reflect.TypeFor[metav1.Duration]()
	quantityType    = reflect.TypeFor[quantity.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
	rawExtType      = reflect.TypeFor[runtime.RawExtension]()
	fieldsV1Type    = reflect.TypeFor[metav1.FieldsV1]()
)

// schemaName is upstream's definition name for a Go type, e.g.
// io.k8s.api.core.v1.PodSpec.
func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	parts := strings.SplitN(pkg, "/", 2)
	host := strings.Split(parts[0], ".")
	for i, j := 0, len(host)-1; i < j; i, j = i+1, j-1 {
		host[i], host[j] = host[j], host[i]
	}
	name := strings.Join(host, ".")
	if len(parts) == 2 {
		name += "." + strings.ReplaceAll(parts[1], "/", ".")
	}
	return name + "." + t.Name()
}

// schemaBuilder collects component schemas by name.
type schemaBuilder struct {
	schemas map[string]map[string]any
}

// ref returns the schema of a field of type t, registering named struct
// types as components.
func (b *schemaBuilder) ref(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, microTimeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType, quantityType:
		return map[string]any{"type": "string"}
	case intOrStringType:
		return map[string]any{"x-kubernetes-int-or-string": true}
	case rawExtType, fieldsV1Type:
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int32, reflect.Uint32, reflect.Int, reflect.Int16, reflect.Int8, reflect.Uint16, reflect.Uint8:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number", "format": "double"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": b.ref(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.ref(t.Elem())}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := b.schemas[name]; !ok {
			b.schemas[name] = map[string]any{} // placeholder against cycles
			b.schemas[name] = b.structSchema(t)
		}
		return map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/" + name}}}
	}
	return map[string]any{}
}

func (b *schemaBuilder) structSchema(t reflect.Type) map[string]any {
	var docs map[string]string
	if d, ok := reflect.New(t).Elem().Interface().(swaggerDoc); ok {
		docs = d.SwaggerDoc()
	}
	props := map[string]any{}
	b.addFields(t, props, docs)
	s := map[string]any{"type": "object", "properties": props}
	if d := docs[""]; d != "" {
		s["description"] = d
	}
	return s
}

func (b *schemaBuilder) addFields(t reflect.Type, props map[string]any, docs map[string]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				var inner map[string]string
				if d, ok := reflect.New(ft).Elem().Interface().(swaggerDoc); ok {
					inner = d.SwaggerDoc()
				}
				b.addFields(ft, props, inner)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		s := b.ref(f.Type)
		if d := docs[name]; d != "" {
			s["description"] = d
		}
		props[name] = s
	}
}

// openAPIComponents returns the component schemas of a group version's
// kinds, each top-level kind tagged with x-kubernetes-group-version-kind.
func (s *Server) openAPIComponents(gv string, resources []*registry.Resource) map[string]any {
	b := &schemaBuilder{schemas: map[string]map[string]any{}}
	for _, res := range resources {
		obj, err := s.scheme.New(res.GVK())
		if err != nil {
			continue
		}
		t := reflect.TypeOf(obj).Elem()
		b.ref(t)
		k := res.GVK()
		b.schemas[schemaName(t)]["x-kubernetes-group-version-kind"] = []any{
			map[string]string{"group": k.Group, "version": k.Version, "kind": k.Kind},
		}
	}
	out := map[string]any{}
	for name, schema := range b.schemas {
		out[name] = schema
	}
	return out
}
