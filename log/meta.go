package log

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rocketkafka/broker/segment"
)

// File names in the data directory; doc.go describes each.
const (
	metaPropertiesFile = "meta.properties"
	metadataFile       = "metadata.json"
	checkpointFile     = "checkpoint.json"
	commitLogDir       = "commitlog"
	consumeQueueDir    = "consumequeue"
)

// producerIDBlock is how many producer IDs are reserved per metadata write,
// so InitProducerId rarely touches the disk and IDs never repeat after a crash.
const producerIDBlock = 1000

// metadata is the durable catalogue of topics.
type metadata struct {
	Topics []topicMeta `json:"topics"`
	// ProducerIDLimit is the end of the reserved producer ID block: after a
	// restart allocation resumes here, so no ID is handed out twice.
	ProducerIDLimit int64 `json:"producer_id_limit"`
}

type topicMeta struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func readFile(fsys segment.FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic replaces name so that a crash leaves the old or the new
// contents, never a mix: write a temporary file, fsync, rename, fsync the
// directory.
func writeFileAtomic(fsys segment.FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

func readJSON(fsys segment.FS, name string, v any) (bool, error) {
	b, err := readFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, errors.Join(ErrStorage, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return true, nil
}

func writeJSON(fsys segment.FS, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(fsys, name, append(b, '\n')); err != nil {
		return errors.Join(ErrStorage, err)
	}
	return nil
}

// loadClusterID reads the cluster ID from meta.properties, creating the file
// with want (or a new random ID) on first start so the ID is stable.
func loadClusterID(fsys segment.FS, dir, want string) (string, error) {
	name := filepath.Join(dir, metaPropertiesFile)
	b, err := readFile(fsys, name)
	switch {
	case err == nil:
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok && v != "" {
				return v, nil
			}
		}
		return "", fmt.Errorf("%w: %s has no cluster.id", ErrCorrupt, name)
	case !errors.Is(err, fs.ErrNotExist):
		return "", errors.Join(ErrStorage, err)
	}
	id := want
	if id == "" {
		var u [16]byte
		rand.Read(u[:])
		id = base64.RawURLEncoding.EncodeToString(u[:])
	}
	props := "# written by the broker on first start; do not edit\nversion=1\ncluster.id=" + id + "\n"
	if err := writeFileAtomic(fsys, name, []byte(props)); err != nil {
		return "", errors.Join(ErrStorage, err)
	}
	return id, nil
}

func newTopicID() TopicID {
	for {
		var id TopicID
		rand.Read(id[:])
		// Kafka reserves the zero UUID and the metadata topic's UUID (0...01).
		if id != (TopicID{}) && id != (TopicID{15: 1}) {
			return id
		}
	}
}

// ParseTopicID parses the form TopicID.String prints, or 32 hex digits.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: topic id %q", ErrCorrupt, s)
	}
	copy(id[:], b)
	return id, nil
}
