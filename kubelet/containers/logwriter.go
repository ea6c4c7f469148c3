package containers

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// maxLogLine is the longest line written as one record; longer lines are
// split into partial (P) records, as CRI does.
const maxLogLine = 16 * 1024

// criWriter writes one stream of a container's output to a shared log file
// in the CRI format: "TIMESTAMP STREAM P|F MESSAGE\n".
type criWriter struct {
	mu     sync.Mutex // Write and Close come from different goroutines
	file   *logFile
	stream string
	now    func() time.Time
	buf    []byte
}

// Upstream's defaults for containerLogMaxSize and containerLogMaxFiles.
const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 5
)

// logFile is a container's log file shared by its stdout and stderr
// writers. When it grows past maxSize it is renamed to PATH.TIMESTAMP and a
// new one started; at most maxFiles files are kept, as upstream rotates.
type logFile struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	now      func() time.Time
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{path: path, f: f, size: st.Size(), maxSize: defaultLogMaxSize, maxFiles: defaultLogMaxFiles, now: time.Now}, nil
}

// rotate starts a new file; callers hold mu.
func (l *logFile) rotate() {
	l.f.Close()
	_ = os.Rename(l.path, l.path+"."+l.now().UTC().Format("20060102-150405.000000000"))
	if old, err := filepath.Glob(l.path + ".*"); err == nil && len(old) > l.maxFiles-1 {
		sort.Strings(old)
		for _, o := range old[:len(old)-(l.maxFiles-1)] {
			os.Remove(o)
		}
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		// Keep writing nowhere rather than fail the container.
		f, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	l.f, l.size = f, 0
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func (l *logFile) record(ts time.Time, stream, tag string, msg []byte) {
	var b bytes.Buffer
	b.WriteString(ts.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(msg)
	b.WriteByte('\n')
	l.mu.Lock()
	if l.maxSize > 0 && l.size > 0 && l.size+int64(b.Len()) > l.maxSize {
		l.rotate()
	}
	n, _ := l.f.Write(b.Bytes())
	l.size += int64(n)
	l.mu.Unlock()
}

var _ io.WriteCloser = (*criWriter)(nil)

func (w *criWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.file.record(w.now(), w.stream, "F", w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLogLine {
		w.file.record(w.now(), w.stream, "P", w.buf[:maxLogLine])
		w.buf = w.buf[maxLogLine:]
	}
	return n, nil
}

// Close flushes a trailing unterminated line as a partial record.
func (w *criWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.file.record(w.now(), w.stream, "P", w.buf)
		w.buf = nil
	}
	return nil
}
