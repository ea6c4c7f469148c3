package supervisor_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	. "github.com/tinykube/tinykube/kubelet/supervisor"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestNewNamesTheMissingPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := New(Config{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "containerd") || !strings.Contains(err.Error(), "apt-get install containerd") {
		t.Fatalf("New without containerd: got %v, want an error naming the containerd package", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestSupervisorRestartsContainerdAndStopsIt(t *testing.T) {
	nodetest.RequireRoot(t)
	s, err := New(Config{Dir: nodetest.ShortTempDir(t), RestartDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("containerd not ready after 30s")
	}
	if err := Ping(ctx, s.Address()); err != nil {
		t.Fatalf("containerd not answering after Ready: %v", err)
	}

	first := s.PID()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pid := s.PID()
		return pid != 0 && pid != first && Ping(ctx, s.Address()) == nil, nil
	})
	if err != nil {
		t.Fatalf("containerd was not restarted after it was killed: %v", err)
	}
	second := s.PID()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil
	if err := syscall.Kill(second, 0); err == nil {
		t.Errorf("containerd pid %d still running after shutdown", second)
	}
	if _, err := os.Stat(s.Address()); err == nil {
		if Ping(context.Background(), s.Address()) == nil {
			t.Errorf("containerd still answers after shutdown")
		}
	}
}
