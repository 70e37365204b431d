package mi

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Who may own the command FIFO. A FIFO in a directory others can write
// (the old default, /tmp) could have been made by anyone beforehand: its
// owner could then read every request, or answer in imcd's place. So the
// FIFO must be imcd's user's own, and what was opened is checked again.

// checkFIFO refuses what is at path unless it is a FIFO of imcd's user.
func checkFIFO(path string, fi fs.FileInfo) error {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		what := "a " + fileKind(fi.Mode())
		if st != nil {
			what += " owned by uid " + strconv.FormatUint(uint64(st.Uid), 10)
		}
		return fmt.Errorf("%w: %s is %s", ErrNotFIFO, path, what)
	}
	if st != nil && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s belongs to uid %d and imcd runs as uid %d; remove it, or put the FIFO in a directory only imcd's user can write",
			ErrFIFOOwner, path, st.Uid, os.Geteuid())
	}
	return nil
}

// secureFIFO checks the FIFO that was opened and sets its mode (mkfifo's
// is masked by the umask) and, when gid is not -1, its group.
func secureFIFO(f *os.File, mode os.FileMode, gid int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := checkFIFO(f.Name(), fi); err != nil {
		return err
	}
	if gid >= 0 {
		if err := f.Chown(-1, gid); err != nil {
			return fmt.Errorf("mi: giving the FIFO to group %d: %w", gid, err)
		}
	}
	return f.Chmod(mode)
}

// lookupGroup returns the gid of a group name or number, -1 for "".
func lookupGroup(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(group); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("mi: FIFO group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// fileKind names what a mode is, for error texts.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
