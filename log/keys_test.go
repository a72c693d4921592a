package log

import (
	"fmt"
	"testing"
	"time"

	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// keyBatch builds a batch of records with the given keys, 1 ms apart from ts.
func keyBatch(t testing.TB, ts int64, codec record.Codec, keys ...string) []byte {
	recs := make([]record.Record, len(keys))
	for i, k := range keys {
		recs[i] = record.Record{TimestampDelta: int64(i), Key: []byte(k), Value: []byte("v-" + k + fmt.Sprint(ts+int64(i)))}
	}
	b, err := record.Build(nil, record.Header{FirstTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitIndexed(t *testing.T, l *Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.keys.indexedTo() < l.cl.written.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the key index did not catch up")
		}
		l.keys.kick()
		time.Sleep(time.Millisecond) // poll interval
	}
}

func TestLookupKey(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("orders", 2, nil)
	l.CreateTopic("noindex", 1, map[string]string{"key.index.enable": "false"})
	p0, _ := l.Partition("orders", 0)
	p1, _ := l.Partition("orders", 1)
	p0.Append(keyBatch(t, 1000, record.None, "alice", "bob"))
	p1.Append(keyBatch(t, 2000, record.Zstd, "carol", "alice"))
	p0.Append(keyBatch(t, 3000, record.Gzip, "alice"))
	n, _ := l.Partition("noindex", 0)
	n.Append(keyBatch(t, 1000, record.None, "alice"))
	waitIndexed(t, l)

	check := func(l *Log) {
		t.Helper()
		got, err := l.LookupKey("orders", []byte("alice"), 0, 5000, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := "[0/2@3000 1/1@2001 0/0@1000]" // newest first
		var s []string
		for _, r := range got {
			s = append(s, fmt.Sprintf("%d/%d@%d", r.Partition, r.Offset, r.Timestamp))
			if string(r.Value) != fmt.Sprintf("v-alice%d", r.Timestamp) {
				t.Fatalf("value %q for %v", r.Value, r)
			}
		}
		if fmt.Sprint(s) != want {
			t.Fatalf("alice in orders: %v, want %s", s, want)
		}
		if got, _ := l.LookupKey("orders", []byte("alice"), 1500, 2500, 0); len(got) != 1 || got[0].Offset != 1 {
			t.Fatalf("time range [1500, 2500]: %v", got)
		}
		if got, _ := l.LookupKey("orders", []byte("alice"), 0, 5000, 1); len(got) != 1 {
			t.Fatalf("limit 1: %d records", len(got))
		}
		if got, _ := l.LookupKey("noindex", []byte("alice"), 0, 5000, 0); len(got) != 0 {
			t.Fatalf("a topic without key indexing returned %v", got)
		}
	}
	check(l)
	l.Close()
	l = openTest(t, testOptions(fs))
	check(l)
	// A crash: the index is rebuilt past the checkpoint without duplicates.
	p0, _ = l.Partition("orders", 0)
	p0.Append(keyBatch(t, 4000, record.None, "dave"))
	waitIndexed(t, l)
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	waitIndexed(t, l)
	check(l)
	if got, _ := l.LookupKey("orders", []byte("dave"), 0, 5000, 0); len(got) != 1 {
		t.Fatalf("dave after the crash: %v", got)
	}
	// Records removed by retention are not returned.
	p0, _ = l.Partition("orders", 0)
	p0.DeleteRecords(3)
	if got, _ := l.LookupKey("orders", []byte("alice"), 0, 5000, 0); len(got) != 1 || got[0].Partition != 1 {
		t.Fatalf("after DeleteRecords: %v", got)
	}
	l.Close()
}
