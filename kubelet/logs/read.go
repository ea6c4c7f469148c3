package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Options are kubectl logs' knobs, as PodLogOptions carries them.
type Options struct {
	// Follow keeps streaming new output until Done reports true.
	Follow bool
	// TailLines, when >= 0, starts that many lines from the end.
	TailLines int64
	// Since drops records older than it.
	Since time.Time
	// Timestamps prefixes each line with its RFC 3339 timestamp.
	Timestamps bool
	// LimitBytes, when > 0, stops after that many bytes of output.
	LimitBytes int64
	// Done reports whether the container has exited, ending a follow once
	// the file is drained. Nil means never.
	Done func() bool
	// PollInterval is how often a follow checks for new output; 100ms when
	// zero.
	PollInterval time.Duration
}

// record is one parsed line of a CRI log.
type record struct {
	ts      time.Time
	rawTS   []byte
	partial bool
	msg     []byte
}

// parse splits a CRI log line; malformed lines come back whole as a
// message.
func parse(line []byte) record {
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 4 {
		return record{msg: line}
	}
	ts, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return record{msg: line}
	}
	return record{ts: ts, rawTS: fields[0], partial: string(fields[2]) == "P", msg: fields[3]}
}

// Read writes the log at path to w according to opts.
func Read(ctx context.Context, path string, w io.Writer, opts Options) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if opts.TailLines >= 0 {
		if err := seekTail(f, opts.TailLines); err != nil {
			return err
		}
	}
	out := &limitWriter{w: w, left: opts.LimitBytes}
	r := bufio.NewReaderSize(f, 64*1024)
	poll := opts.PollInterval
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	var pending []byte // an unterminated line at EOF
	atLineStart := true
	for {
		chunk, err := r.ReadBytes('\n')
		if len(chunk) > 0 {
			pending = append(pending, chunk...)
		}
		if err == nil {
			line := bytes.TrimSuffix(pending, []byte{'\n'})
			pending = nil
			rec := parse(line)
			if !rec.ts.IsZero() && rec.ts.Before(opts.Since) {
				continue
			}
			var b []byte
			if opts.Timestamps && atLineStart && rec.rawTS != nil {
				b = append(append(b, rec.rawTS...), ' ')
			}
			b = append(b, rec.msg...)
			if !rec.partial {
				b = append(b, '\n')
			}
			atLineStart = !rec.partial
			if _, werr := out.Write(b); werr != nil {
				if errors.Is(werr, errLimit) {
					return nil
				}
				return werr
			}
			if fl, ok := w.(interface{ Flush() }); ok && opts.Follow {
				fl.Flush()
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !opts.Follow {
			return nil
		}
		if opts.Done != nil && opts.Done() {
			// One more drain: output may have landed after the check.
			if more, _ := r.Peek(1); len(more) == 0 {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const block = 32 * 1024
	var lines int64
	pos := size
	buf := make([]byte, block)
	for pos > 0 {
		read := int64(block)
		if pos < read {
			read = pos
		}
		pos -= read
		if _, err := f.ReadAt(buf[:read], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := read - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == size-1 {
				continue
			}
			lines++
			if lines == n {
				_, err := f.Seek(pos+i+1, io.SeekStart)
				return err
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

var errLimit = errors.New("logs: byte limit reached")

type limitWriter struct {
	w    io.Writer
	left int64 // <= 0: no limit
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left == 0 {
		return l.w.Write(p)
	}
	if int64(len(p)) >= l.left {
		n, err := l.w.Write(p[:l.left])
		if err != nil {
			return n, err
		}
		return n, errLimit
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
