package protocol

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// TestFetchOfDamagedRegion: a CommitLog region that cannot be read is
// answered with KAFKA_STORAGE_ERROR for that partition, never with garbage,
// and the other partitions are served.
func TestFetchOfDamagedRegion(t *testing.T) {
	fs := segment.NewMemFS()
	store, err := log.Open(log.Options{Dir: "/d", FS: fs, SegmentBytes: 1 << 20, ConsumeQueueEntries: 64, KeyIndexSlots: 64, KeyIndexEntries: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := New(testConfig(), store, zap.NewNop())
	topic, _ := store.CreateTopic("t", 1, nil)
	produce(t, h, store, 9, "t", testBatch(t, 3, 100, record.None))
	if p := fetch(t, h, fetchReq(12, "t", topic.ID, 0, 0, 1, 1<<20)).Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("healthy fetch: code %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	fs.FailReads(filepath.Join("/d", "commitlog", segment.Name(0)))
	p := fetch(t, h, fetchReq(12, "t", topic.ID, 0, 0, 1, 1<<20)).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.KafkaStorageError.Code || len(p.RecordBatches) != 0 {
		t.Fatalf("damaged region: code %d, %d bytes; want KAFKA_STORAGE_ERROR and no records", p.ErrorCode, len(p.RecordBatches))
	}
	fs.FailReads("")
}
