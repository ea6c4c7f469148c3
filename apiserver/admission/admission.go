package admission

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Operation is what a request does to an object.
type Operation string

// The operations admission sees.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	// Delete is checked before the object is deleted; Object is nil.
	Delete Operation = "DELETE"
)

// Attributes describe one write being admitted.
type Attributes struct {
	Operation Operation
	Resource  schema.GroupVersionResource
	// Subresource is the subresource the request names ("" for the
	// main resource), e.g. "status" or "eviction".
	Subresource     string
	Namespace, Name string
	// Object is the object to be written (nil on Delete); mutating
	// plugins may change it. OldObject is the stored object on Update
	// (nil otherwise).
	Object, OldObject runtime.Object
	// DryRun: nothing may be persisted.
	DryRun bool
}

// Plugin is one admission plugin. It is a Mutator, a Validator or both.
type Plugin interface {
	// Name is the plugin's upstream name, e.g. "NodeRestriction".
	Name() string
}

// Mutator may change a.Object. It runs before every Validator, after
// the resource's defaulting and validation; it must not persist anything.
type Mutator interface {
	Plugin
	Admit(ctx context.Context, a *Attributes) error
}

// Validator may only refuse a write. It must not change a.Object.
type Validator interface {
	Plugin
	Validate(ctx context.Context, a *Attributes) error
}

// ObjectGetter reads an object as stored; a missing one is an
// apierrors NotFound error.
type ObjectGetter interface {
	Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error)
}

// Chain runs admission plugins: every Mutator in order, then every
// Validator in order; the first error refuses the write.
type Chain struct {
	mutating   []Mutator
	validating []Validator
}

// NewChain builds a chain of plugins, kept in the order given within
// each phase.
func NewChain(plugins ...Plugin) (*Chain, error) {
	c := &Chain{}
	for _, p := range plugins {
		m, isMutator := p.(Mutator)
		v, isValidator := p.(Validator)
		if !isMutator && !isValidator {
			return nil, fmt.Errorf("admission: plugin %s neither mutates nor validates", p.Name())
		}
		if isMutator {
			c.mutating = append(c.mutating, m)
		}
		if isValidator {
			c.validating = append(c.validating, v)
		}
	}
	return c, nil
}

// Admit runs the mutating and then the validating plugins on a.
func (c *Chain) Admit(ctx context.Context, a *Attributes) error {
	for _, m := range c.mutating {
		if err := m.Admit(ctx, a); err != nil {
			return err
		}
	}
	return c.Validate(ctx, a)
}

// Validate runs only the validating plugins, for requests whose object
// is not in hand (deletes, evictions).
func (c *Chain) Validate(ctx context.Context, a *Attributes) error {
	for _, v := range c.validating {
		if err := v.Validate(ctx, a); err != nil {
			return err
		}
	}
	return nil
}
