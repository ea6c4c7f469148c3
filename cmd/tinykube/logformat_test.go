package main

import (
	"fmt"
	"strings"
	"time"
)

// logLine is one line of the server's log, text format: key=value pairs,
// values quoted when they hold spaces, quotes or equals signs.
type logLine map[string]string

// parseLogLine parses one text-format line and checks that it has
// slog's time, level and msg first, then a component.
func parseLogLine(line string) (logLine, error) {
	l := logLine{}
	var keys []string
	rest := line
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 || strings.ContainsAny(rest[:eq], " \"") {
			return nil, fmt.Errorf("not key=value at %q", rest)
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for ; end < len(rest); end++ {
				if rest[end] == '\\' {
					end++
					continue
				}
				if rest[end] == '"' {
					break
				}
			}
			if end >= len(rest) {
				return nil, fmt.Errorf("unterminated quote in %q", rest)
			}
			value, rest = rest[1:end], rest[end+1:]
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				sp = len(rest)
			}
			value, rest = rest[:sp], rest[sp:]
		}
		if rest != "" && !strings.HasPrefix(rest, " ") {
			return nil, fmt.Errorf("no space after %s", key)
		}
		rest = strings.TrimPrefix(rest, " ")
		l[key] = value
		keys = append(keys, key)
	}
	if len(keys) < 3 || keys[0] != "time" || keys[1] != "level" || keys[2] != "msg" {
		return nil, fmt.Errorf("does not start with time, level, msg: %v", keys)
	}
	if _, err := time.Parse(time.RFC3339Nano, l["time"]); err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	level := l["level"]
	if i := strings.IndexAny(level, "+-"); i > 0 {
		level = level[:i]
	}
	switch level {
	case "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return nil, fmt.Errorf("level %q", l["level"])
	}
	if l["component"] == "" {
		return nil, fmt.Errorf("no component")
	}
	return l, nil
}

// checkLog parses every line of a log; it returns the lines that are not
// in the one format, with why.
func checkLog(log string) (lines []logLine, bad []string) {
	for _, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		if line == "" {
			continue
		}
		l, err := parseLogLine(line)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%v: %s", err, line))
			continue
		}
		lines = append(lines, l)
	}
	return lines, bad
}
