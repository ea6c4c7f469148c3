package containers

import (
	"bytes"
	"io"
	"os"
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

// logFile is a container's log file shared by its stdout and stderr
// writers.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
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
	l.f.Write(b.Bytes())
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
