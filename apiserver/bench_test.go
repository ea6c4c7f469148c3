package apiserver

import (
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkCreateConfigMapParallel measures creates through client-go
// over HTTP on a real bolt store; run with -cpu and -benchtime to vary.
func BenchmarkCreateConfigMapParallel(b *testing.B) {
	ts := newTestServer(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm-", i)}, Data: map[string]string{"k": "v"}}
			if _, err := ts.client.CoreV1().ConfigMaps("default").Create(b.Context(), cm, metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
