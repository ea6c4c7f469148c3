package fieldvalidation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Invalid is a one-error list for an invalid value at a dotted path.
func Invalid(path string, value any, detail string) field.ErrorList {
	return field.ErrorList{field.Invalid(Path(path), value, detail)}
}

// Required is a one-error list for a missing value at a dotted path.
func Required(path string) field.ErrorList {
	return field.ErrorList{field.Required(Path(path), "")}
}

// Path turns "spec.ports" into a field.Path.
func Path(dotted string) *field.Path {
	var p *field.Path
	start := 0
	for i := 0; i <= len(dotted); i++ {
		if i == len(dotted) || dotted[i] == '.' {
			if p == nil {
				p = field.NewPath(dotted[start:i])
			} else {
				p = p.Child(dotted[start:i])
			}
			start = i + 1
		}
	}
	return p
}
