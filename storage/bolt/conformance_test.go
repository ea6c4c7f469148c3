package bolt

import (
	"path/filepath"
	"testing"

	"github.com/tinykube/tinykube/storage"
	"github.com/tinykube/tinykube/storage/storagetest"
)

const testWatchBuffer = 256

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Backend{
		Open: func(t testing.TB) storage.Interface {
			return openTemp(t, Options{WatchBuffer: testWatchBuffer})
		},
		WatchBuffer: testWatchBuffer,
	})
}
