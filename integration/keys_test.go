package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLookupByKey: records produced by franz-go (compressed, over several
// partitions) are found by key with `broker lookup`, newest first, within
// a time range; a topic with key.index.enable=false is not indexed.
func TestLookupByKey(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	createTopic(t, adm, "orders", 3, nil)
	off := "false"
	createTopic(t, adm, "plain", 1, map[string]*string{"key.index.enable": &off})
	// Manual partitions, and no delivery timeout: franz-go measures it from
	// the record timestamp, which is an hour old here.
	cl := newClient(t, b, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := range 30 {
		key := fmt.Sprintf("customer-%d", i%5)
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(key), Value: []byte(fmt.Sprintf("order-%d", i)), Timestamp: base.Add(time.Duration(i) * time.Second), Partition: int32(i % 3)})
	}
	recs = append(recs, &kgo.Record{Topic: "plain", Key: []byte("customer-1"), Value: []byte("x"), Timestamp: base})
	produceSync(t, cl, recs...)

	lookup := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command(brokerBin, append([]string{"lookup", "--admin=" + b.metricsAddr}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("broker lookup %v: %v\n%s", args, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[1:] // after the header
	}
	valuesOf := func(lines []string) []string {
		var v []string
		for _, l := range lines {
			f := strings.Fields(l)
			v = append(v, f[len(f)-1])
		}
		return v
	}
	// The index follows the CommitLog shortly behind the producers.
	eventually(t, 10*time.Second, "customer-1 to be indexed", func() error {
		if got := valuesOf(lookup("--topic=orders", "--key=customer-1")); fmt.Sprint(got) != "[order-26 order-21 order-16 order-11 order-6 order-1]" {
			return fmt.Errorf("customer-1: %v", got)
		}
		return nil
	})
	from := base.Add(10 * time.Second).Format(time.RFC3339)
	to := fmt.Sprint(base.Add(20 * time.Second).UnixMilli())
	if got := valuesOf(lookup("--topic=orders", "--key=customer-1", "--from="+from, "--to="+to)); fmt.Sprint(got) != "[order-16 order-11]" {
		t.Fatalf("customer-1 between +10s and +20s: %v", got)
	}
	if got := lookup("--topic=orders", "--key=nobody"); len(got) != 0 {
		t.Fatalf("an unknown key found %v", got)
	}
	if got := lookup("--topic=plain", "--key=customer-1"); len(got) != 0 {
		t.Fatalf("a topic without key indexing found %v", got)
	}
	// The partition and offset printed are where the record is.
	first := strings.Fields(lookup("--topic=orders", "--key=customer-2", "--limit=1")[0])
	if first[0] != "0" || first[1] != "9" {
		t.Fatalf("newest customer-2 (order-27, partition 0, offset 9) printed as %v", first)
	}
}
