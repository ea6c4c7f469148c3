package server

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupMemory gives back what starting up touched and running
// does not need: the heap garbage of start-up, and the pages of the
// binary's read-only segments (code, type data) that only start-up read,
// most of them the built-in kubectl's, whose packages initialise in every
// process of this one binary. Measured on the API server with its
// controllers: RSS 105-120 MiB before, about 52 MiB after, of which the
// binary's own pages are 31 MiB instead of 76-86 MiB. They are clean file
// pages the kernel could reclaim anyway, but RSS is what users read in
// top. Dropped pages stay in the page cache and come back on their next
// use. Mappings holding any private modified page (the dynamic linker's
// relocated, then write-protected RELRO) are left alone, as are writable
// ones.
func releaseStartupMemory() {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type mapping struct{ start, end uintptr }
	var clean []mapping
	var cur *mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			// A mapping's header: start-end perms offset dev inode [path].
			cur = nil
			if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
				continue
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			clean = append(clean, mapping{uintptr(start), uintptr(end)})
			cur = &clean[len(clean)-1]
			continue
		}
		if cur != nil && fields[0] == "Anonymous:" && len(fields) > 1 && fields[1] != "0" {
			// Modified pages: dropping them would lose the modification.
			cur.end = cur.start
		}
	}
	for _, m := range clean {
		if m.end > m.start {
			// The raw call: these addresses are not Go memory.
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED)
		}
	}
}
