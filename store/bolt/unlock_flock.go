//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package bolt

import (
	"os"
	"syscall"
)

// unlock releases bbolt's flock on f. Closing f is not enough when bbolt
// failed half-way through Open: its memory map still references the open
// file, and the lock lives as long as that reference does.
func unlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
