package logs

import (
	"context"
	"testing"
	"time"

	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	"k8s.io/apimachinery/pkg/util/wait"
)

type syncBuffer = nodetest.Buffer

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatal("condition not met within 5s")
	}
}
