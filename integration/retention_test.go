package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRetention: a topic with a small retention.bytes over small CommitLog
// files. The log start offset moves, CommitLog files holding nothing live
// are deleted, a consumer positioned below the start gets
// OFFSET_OUT_OF_RANGE and its reset policy takes it to the new start, and
// DeleteRecords (through kadm) moves the start on request and survives a
// restart.
func TestRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	extra := []string{
		"--commitlog.segment.bytes=262144",
		"--message.max.bytes=65536",
		"--log.retention.check.interval.ms=50",
	}
	b := startBroker(t, dir, extra...)
	adm := newAdmin(t, b)
	bytesLimit := "100000"
	createTopic(t, adm, "short", 1, map[string]*string{"retention.bytes": &bytesLimit})
	cl := newClient(t, b, kgo.ProducerBatchMaxBytes(16384))
	value := make([]byte, 4000)
	rand.Read(value) // incompressible: the client compresses by default
	var recs []*kgo.Record
	for i := range 400 { // ~1.6 MB: several CommitLog files
		recs = append(recs, &kgo.Record{Topic: "short", Value: value, Key: []byte(fmt.Sprint(i))})
	}
	produceSync(t, cl, recs...)
	files := func() int {
		entries, err := os.ReadDir(filepath.Join(dir, "commitlog"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	eventually(t, 10*time.Second, "retention to move the start and free CommitLog files", func() error {
		start := startOffsets(t, adm, "short")[0]
		if start < 300 || files() > 2 {
			return fmt.Errorf("log start offset %d, end %d, %d CommitLog files", start, endOffsets(t, adm, "short")[0], files())
		}
		return nil
	})
	start := startOffsets(t, adm, "short")[0]

	// A consumer asking for offset 0 is out of range; its reset policy
	// (here: the earliest offset) takes it to what is left.
	cl2 := newClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"short": {0: kgo.NewOffset().At(0)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := pollN(t, cl2, int(400-start), requestTimeout); got[0].Offset != start {
		t.Fatalf("a consumer at offset 0 was reset to %d, want the log start offset %d", got[0].Offset, start)
	}

	// DeleteRecords to the end, then a restart.
	end := endOffsets(t, adm, "short")[0]
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "short", Partition: 0, At: end})
	resp, err := adm.DeleteRecords(testCtx(t, requestTimeout), del)
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.Error(); e != nil {
		t.Fatal(e)
	}
	b.stop(t)
	b = startBroker(t, dir, extra...)
	adm = newAdmin(t, b)
	if got := startOffsets(t, adm, "short")[0]; got != end {
		t.Fatalf("after a restart the log start offset is %d, want %d", got, end)
	}
}
