package admission

import (
	"context"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// recorder is a plugin that records when it ran; refuse makes it fail.
type recorder struct {
	name   string
	log    *[]string
	refuse bool
}

func (r recorder) Name() string { return r.name }

func (r recorder) run(phase string) error {
	*r.log = append(*r.log, phase+":"+r.name)
	if r.refuse {
		return errors.New(r.name + " refuses")
	}
	return nil
}

type mutator struct{ recorder }

func (m mutator) Admit(context.Context, *Attributes) error { return m.run("admit") }

type validator struct{ recorder }

func (v validator) Validate(context.Context, *Attributes) error { return v.run("validate") }

type both struct{ recorder }

func (b both) Admit(context.Context, *Attributes) error    { return b.run("admit") }
func (b both) Validate(context.Context, *Attributes) error { return b.run("validate") }

func TestChainRunsMutatorsBeforeValidatorsInOrder(t *testing.T) {
	var log []string
	c, err := NewChain(
		validator{recorder{"v1", &log, false}},
		mutator{recorder{"m1", &log, false}},
		both{recorder{"b", &log, false}},
		mutator{recorder{"m2", &log, false}},
		validator{recorder{"v2", &log, false}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Admit(context.Background(), &Attributes{Operation: Create}); err != nil {
		t.Fatal(err)
	}
	want := []string{"admit:m1", "admit:b", "admit:m2", "validate:v1", "validate:b", "validate:v2"}
	if !slices.Equal(log, want) {
		t.Fatalf("ran %v, want %v", log, want)
	}
	log = nil
	if err := c.Validate(context.Background(), &Attributes{Operation: Delete}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"validate:v1", "validate:b", "validate:v2"}; !slices.Equal(log, want) {
		t.Fatalf("a delete ran %v, want %v", log, want)
	}
}

func TestChainStopsAtTheFirstRefusal(t *testing.T) {
	var log []string
	c, err := NewChain(mutator{recorder{"m1", &log, true}}, validator{recorder{"v1", &log, false}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Admit(context.Background(), &Attributes{Operation: Create}); err == nil || err.Error() != "m1 refuses" {
		t.Fatalf("err = %v", err)
	}
	if !slices.Equal(log, []string{"admit:m1"}) {
		t.Fatalf("ran %v", log)
	}
}

func TestChainRefusesAPluginThatDoesNothing(t *testing.T) {
	if _, err := NewChain(recorder{name: "idle"}); err == nil {
		t.Fatal("a plugin that neither mutates nor validates was accepted")
	}
}

func TestDefaultTolerationSecondsAddsConfiguredTolerationsToNewPods(t *testing.T) {
	ten := int64(10)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}}}
	a := &Attributes{Operation: Create, Resource: corev1.SchemeGroupVersion.WithResource("pods"), Object: pod}
	if err := (DefaultTolerationSeconds{NotReady: &ten}).Admit(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Tolerations) != 2 || pod.Spec.Tolerations[1].Key != corev1.TaintNodeNotReady || *pod.Spec.Tolerations[1].TolerationSeconds != 10 {
		t.Fatalf("tolerations %+v", pod.Spec.Tolerations)
	}
	update := &Attributes{Operation: Update, Resource: a.Resource, Object: &corev1.Pod{}, OldObject: pod}
	if err := (DefaultTolerationSeconds{}).Admit(context.Background(), update); err != nil || len(update.Object.(*corev1.Pod).Spec.Tolerations) != 0 {
		t.Fatalf("an update got tolerations: %v", err)
	}
}
