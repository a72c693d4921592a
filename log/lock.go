package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rocketkafka/broker/segment"
)

// ErrLocked is a data directory another process has open.
var ErrLocked = errors.New("log: data directory in use by another process")

// lockFile is taken with flock for as long as the store is open, as
// Kafka's .lock: a second broker on the same directory would replay and
// cut the CommitLog under the first.
const lockFile = ".lock"

// lockDir takes the directory lock on the real filesystem; injected
// filesystems belong to one process and need none.
func lockDir(fsys segment.FS, dir string) (*os.File, error) {
	if fsys != segment.OS {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, errors.Join(ErrStorage, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, errors.Join(ErrStorage, err)
	}
	return f, nil
}
