package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestListWithNonPositiveLimitReturnsEverything(t *testing.T) {
	ts := newTestServer(t)
	for i := range 3 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}
		if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []string{"-1", "0"} {
		r := ts.do(http.MethodGet, "/api/v1/namespaces/default/configmaps?limit="+limit, "", "")
		if r.code != http.StatusOK {
			t.Fatalf("limit=%s: %d %s", limit, r.code, r.body)
		}
		var list corev1.ConfigMapList
		if err := json.Unmarshal(r.body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 3 || list.Continue != "" {
			t.Errorf("limit=%s: %d items, continue %q; want all 3 and no continue", limit, len(list.Items), list.Continue)
		}
	}
}
