package plugins

import (
	"context"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

type fakeHandle struct {
	f informers.SharedInformerFactory
}

func (h fakeHandle) Informers() informers.SharedInformerFactory { return h.f }

func TestSelectorSpreadScore(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	client := fake.NewClientset(svc)
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := NewSelectorSpread(fakeHandle{factory})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	spread := p.(framework.ScorePlugin)

	rsPod := func(name, node string) *corev1.Pod {
		return st.MakePod().Name(name).Node(node).Owner("ReplicaSet", "rs", "rs-1").Obj()
	}
	cases := []struct {
		name  string
		pod   *corev1.Pod
		nodes []*framework.NodeInfo
		want  map[string]int64
	}{
		{
			name: "fewer pods of the same ReplicaSet score higher",
			pod:  st.MakePod().Name("new").Owner("ReplicaSet", "rs", "rs-1").Obj(),
			nodes: []*framework.NodeInfo{
				nodeWith(st.MakeNode().Name("a").Obj(), rsPod("1", "a"), rsPod("2", "a")),
				nodeWith(st.MakeNode().Name("b").Obj(), rsPod("3", "b")),
				nodeWith(st.MakeNode().Name("c").Obj()),
			},
			want: map[string]int64{"a": 0, "b": 50, "c": 100},
		},
		{
			name: "pods of another ReplicaSet do not count",
			pod:  st.MakePod().Name("new").Owner("ReplicaSet", "other", "rs-2").Obj(),
			nodes: []*framework.NodeInfo{
				nodeWith(st.MakeNode().Name("a").Obj(), rsPod("1", "a")),
				nodeWith(st.MakeNode().Name("b").Obj()),
			},
			want: map[string]int64{"a": 100, "b": 100},
		},
		{
			name: "pods selected by the same Service count",
			pod:  st.MakePod().Name("new").Label("app", "web").Obj(),
			nodes: []*framework.NodeInfo{
				nodeWith(st.MakeNode().Name("a").Obj(), st.MakePod().Name("w1").Node("a").Label("app", "web").Obj()),
				nodeWith(st.MakeNode().Name("b").Obj(), st.MakePod().Name("x1").Node("b").Label("app", "other").Obj()),
			},
			want: map[string]int64{"a": 0, "b": 100},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := scoreNodes(t, spread, tc.pod, tc.nodes...); !maps.Equal(got, tc.want) {
				t.Fatalf("scores = %v, want %v", got, tc.want)
			}
		})
	}
	if got := scoreNodes(t, spread, st.MakePod().Name("lonely").Obj(), nodeWith(st.MakeNode().Name("a").Obj())); got != nil {
		t.Fatalf("a pod without controller or Service was scored: %v", got)
	}
}
