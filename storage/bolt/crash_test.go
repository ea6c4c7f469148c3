package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
)

const crashChildEnv = "TINYKUBE_CRASH_CHILD_DB"

// TestCrashChild is the writer the crash test kills; it does nothing unless
// started by TestCrashLosesNoAcknowledgedWrite.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashLosesNoAcknowledgedWrite")
	}
	// Short retention, so compaction runs while the writes go on and gets
	// killed too.
	s, err := Open(path, Options{Retention: 20 * time.Millisecond, CompactionInterval: 5 * time.Millisecond})
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(3)
	}
	round := os.Getenv("TINYKUBE_CRASH_ROUND")
	var out sync.Mutex
	ack := func(format string, args ...any) {
		out.Lock()
		// One write(2) per line, straight to the pipe: once printed, the
		// parent may rely on it.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		out.Unlock()
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hot := fmt.Sprintf("/crash/hot/%d", g)
			for i := 0; ; i++ {
				key := fmt.Sprintf("/crash/r%s/g%d/%d", round, g, i)
				value := fmt.Sprintf("%s=%d", key, i)
				kv, err := s.Create(ctx, key, []byte(value))
				if err != nil {
					ack("error create %v", err)
					return
				}
				ack("put %s %d %s", key, kv.ModRevision, value)
				if i%5 == 4 {
					old := fmt.Sprintf("/crash/r%s/g%d/%d", round, g, i-2)
					// Said before the delete: a kill may land after it
					// commits and before its acknowledgement.
					ack("deleting %s", old)
					del, err := s.Delete(ctx, old, 0)
					if err != nil {
						ack("error delete %v", err)
						return
					}
					ack("del %s %d", old, del.ModRevision)
				}
				hv := fmt.Sprintf("%s=%s-%d", hot, round, i)
				kv, err = storage.GuaranteedUpdate(ctx, s, hot, func(storage.KeyValue) ([]byte, error) { return []byte(hv), nil })
				if errors.Is(err, storage.ErrNotFound) {
					kv, err = s.Create(ctx, hot, []byte(hv))
				}
				if err != nil {
					ack("error update %v", err)
					return
				}
				ack("put %s %d %s", hot, kv.ModRevision, hv)
			}
		}()
	}
	wg.Wait()
	os.Exit(4)
}

type ackedWrite struct {
	rev     int64
	value   string
	deleted bool
}

// TestCrashLosesNoAcknowledgedWrite kills a writing process with SIGKILL
// at random points, many times over, and checks after each kill that the
// file opens, that every write the process acknowledged is there, and that
// the revision never goes backwards.
func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("running as the child")
	}
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	path := filepath.Join(t.TempDir(), "state.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[string]ackedWrite{}
	var lastRevision int64
	for round := range rounds {
		// Kill after a random number of acknowledgements, from "almost at
		// once" (during open or the first commit) to a few thousand.
		killAfter := rng.IntN(3000)
		if round%5 == 0 {
			killAfter = rng.IntN(3)
		}
		lines, err := runAndKill(t, path, round, killAfter)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var maxAcked int64
		inFlight := map[string]bool{}
		for _, line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "deleting":
				inFlight[f[1]] = true
			case len(f) == 4 && f[0] == "put":
				rev, _ := strconv.ParseInt(f[2], 10, 64)
				acked[f[1]] = ackedWrite{rev: rev, value: f[3]}
				maxAcked = max(maxAcked, rev)
			case len(f) == 3 && f[0] == "del":
				rev, _ := strconv.ParseInt(f[2], 10, 64)
				acked[f[1]] = ackedWrite{rev: rev, deleted: true}
				delete(inFlight, f[1])
				maxAcked = max(maxAcked, rev)
			case len(f) > 0 && (f[0] == "error" || f[0] == "open-error"):
				t.Fatalf("round %d: child failed: %s", round, line)
			}
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: the file does not open after SIGKILL: %v", round, err)
		}
		rev, err := s.Revision(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rev < lastRevision || rev < maxAcked {
			t.Fatalf("round %d: revision %d after restart; before it was %d, highest acknowledged %d", round, rev, lastRevision, maxAcked)
		}
		lastRevision = rev
		for key, want := range acked {
			kv, err := s.Get(context.Background(), key, 0)
			if inFlight[key] {
				// Either outcome is right for an unacknowledged delete;
				// whichever it was is final, since nothing writes the key
				// again.
				if err == nil {
					acked[key] = ackedWrite{rev: kv.ModRevision, value: string(kv.Value)}
				} else {
					acked[key] = ackedWrite{rev: want.rev, deleted: true}
				}
				continue
			}
			switch {
			case want.deleted && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("round %d: %s was deleted at %d (acknowledged) but reads %q at %d, %v", round, key, want.rev, kv.Value, kv.ModRevision, err)
			case !want.deleted && err != nil:
				t.Fatalf("round %d: acknowledged write of %s at %d lost: %v", round, key, want.rev, err)
			case !want.deleted && (kv.ModRevision < want.rev || kv.ModRevision == want.rev && string(kv.Value) != want.value):
				t.Fatalf("round %d: %s is %q at %d; acknowledged %q at %d", round, key, kv.Value, kv.ModRevision, want.value, want.rev)
			}
		}
		s.Close()
	}
	t.Logf("%d rounds, %d keys checked, final revision %d", rounds, len(acked), lastRevision)
}

// runAndKill starts the child writer, SIGKILLs it after killAfter
// acknowledgements, and returns every line it printed.
func runAndKill(t *testing.T, path string, round, killAfter int) ([]string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("TINYKUBE_CRASH_ROUND=%d", round))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var lines []string
	sc := bufio.NewScanner(stdout)
	for len(lines) < killAfter && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return nil, err
	}
	killed = true
	// Lines printed before the kill were acknowledged: read them all. Each
	// is one write(2) of less than PIPE_BUF, so none is cut in half.
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	_ = cmd.Wait()
	return lines, sc.Err()
}
