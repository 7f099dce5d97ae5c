//go:build unix

package collateral

import (
	"fmt"
	"os"
	"syscall"
)

// checkPrivateDir returns an error unless dir is a directory that the
// current user owns and that no other user may write. Another local user
// who can write the cache directory, such as one who created it first
// under a shared temporary directory, could plant entries in it.
func checkPrivateDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("collateral cache: %s is not a directory; pass --cache-dir naming a directory of your own", dir)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("collateral cache: %s is owned by user ID %d, not by the current user (%d), so another user could plant entries in it; remove it or pass --cache-dir naming a directory of your own", dir, st.Uid, uid)
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("collateral cache: %s has mode %04o, so other users may write it; run chmod go-w %s", dir, info.Mode().Perm(), dir)
	}
	return nil
}
