package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const sample = `2026-01-02T03:04:05.000000001Z stdout F first
2026-01-02T03:04:06.000000002Z stderr F second
2026-01-02T03:04:07.000000003Z stdout P par
2026-01-02T03:04:07.000000004Z stdout F tial
2026-01-02T03:04:08.000000005Z stdout F last
`

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"everything, partial lines joined", Options{TailLines: -1}, "first\nsecond\npartial\nlast\n"},
		{"tail 1 line", Options{TailLines: 1}, "last\n"},
		{"tail 0 lines", Options{TailLines: 0}, ""},
		{"tail more lines than there are", Options{TailLines: 50}, "first\nsecond\npartial\nlast\n"},
		{"since drops older records", Options{TailLines: -1, Since: time.Date(2026, 1, 2, 3, 4, 6, 500, time.UTC)}, "partial\nlast\n"},
		{"timestamps", Options{TailLines: 2, Timestamps: true}, "2026-01-02T03:04:07.000000004Z tial\n2026-01-02T03:04:08.000000005Z last\n"},
		{"byte limit", Options{TailLines: -1, LimitBytes: 8}, "first\nse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), path, &out, tt.opts); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestFollowStreamsNewOutputUntilTheContainerExits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte("2026-01-02T03:04:05Z stdout F one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, &out, Options{TailLines: -1, Follow: true, PollInterval: time.Millisecond, Done: func() bool {
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}})
	}()
	waitUntil(t, func() bool { return out.String() == "one\n" })
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-01-02T03:04:06Z stdout F two\n")
	f.Close()
	waitUntil(t, func() bool { return out.String() == "one\ntwo\n" })
	close(exited)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the container exited")
	}
}
