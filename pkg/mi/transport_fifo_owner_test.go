package mi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is a uid and gid that is not the test's.
const nobody = 65534

// TestFIFOOwner: a FIFO another user made at the path is refused, and so is
// a file of another user; imcd's own FIFO is reused. Changing a file's owner
// needs root, which the tests run as.
func TestFIFOOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	s := newServer(t, state(t, stateInitial), nil)
	dir := t.TempDir()
	f := func(make func(path string) error, want error, text string) {
		t.Helper()
		path := filepath.Join(dir, "fifo")
		os.Remove(path)
		if err := make(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		err := (&FIFOTransport{Server: s, Path: path}).Listen(context.Background())
		if !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
			t.Errorf("%v, want %v saying %q", err, want, text)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the refused file was removed: %v", err)
		}
	}
	f(func(p string) error { return syscall.Mkfifo(p, 0o666) }, ErrFIFOOwner,
		"fifo belongs to uid 65534 and imcd runs as uid 0; remove it, or put the FIFO in a directory only imcd's user can write")
	f(func(p string) error { return os.WriteFile(p, nil, 0o666) }, ErrNotFIFO, "fifo is a regular file owned by uid 65534")
	f(func(p string) error { return os.Symlink("/dev/null", p) }, ErrNotFIFO, "fifo is a symbolic link owned by uid 65534")
}

// TestFIFOModeAndGroup: the FIFO gets the configured mode and group, a FIFO
// of imcd's own with a lax mode is tightened, and an unknown group is an
// error.
func TestFIFOModeAndGroup(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
	tr := &FIFOTransport{Server: s, Path: path}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != DefaultFIFOMode {
		t.Errorf("reused FIFO left at %v", fi.Mode().Perm())
	}
	tr.Close()
	os.Remove(path)
	if os.Geteuid() == 0 {
		tr = &FIFOTransport{Server: s, Path: path, Mode: 0o660, Group: "65534"}
		if err := tr.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if st := fi.Sys().(*syscall.Stat_t); st.Gid != nobody || fi.Mode().Perm() != 0o660 {
			t.Errorf("FIFO gid %d mode %v, want %d 0660", st.Gid, fi.Mode().Perm(), nobody)
		}
		tr.Close()
	}
	err := (&FIFOTransport{Server: s, Path: path, Group: "no-such-group-imcd"}).Listen(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no-such-group-imcd") {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Error("a FIFO was created for an unknown group")
	}
}
