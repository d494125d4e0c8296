//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package bolt

import "os"

// unlock is a no-op where bbolt does not lock with flock.
func unlock(*os.File) error { return nil }
