package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogWriterWritesCRIRecordsAndRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	lf, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lf.maxSize, lf.maxFiles = 200, 3
	tick := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { tick = tick.Add(time.Second); return tick }
	lf.now = now
	w := &criWriter{file: lf, stream: "stdout", now: now}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\n"))
	data, _ := os.ReadFile(path)
	want := "2026-01-02T03:04:06Z stdout F one\n2026-01-02T03:04:07Z stdout F two\n"
	if string(data) != want {
		t.Fatalf("log = %q, want %q", data, want)
	}
	for i := 0; i < 40; i++ {
		w.Write([]byte("a line of output\n"))
	}
	lf.Close()
	rotated, _ := filepath.Glob(path + ".*")
	if len(rotated) != 2 {
		t.Errorf("rotated files = %v, want maxFiles-1 = 2 kept", rotated)
	}
	cur, _ := os.ReadFile(path)
	if len(cur) == 0 || len(cur) > 200 || !strings.HasSuffix(string(cur), "stdout F a line of output\n") {
		t.Errorf("current file (%d bytes) = %q", len(cur), cur)
	}
}
