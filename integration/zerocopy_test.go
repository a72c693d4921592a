package integration

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestZeroCopyFetch consumes ~4 MiB of 16 KiB batches and checks, through
// /metrics, which path served them: with fetch.sendfile.min.bytes=0 the
// record bytes go out with sendfile; with a threshold above any fetch they
// are copied and sendfile is not used.
func TestZeroCopyFetch(t *testing.T) {
	t.Parallel()
	const (
		records   = 256
		valueSize = 16000 // one record per batch, each batch just under 16 KiB
	)
	for _, c := range []struct {
		name     string
		min      string
		sendfile bool
	}{
		{"sendfile", "0", true},
		{"copy", "1099511627776", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir(), "--fetch.sendfile.min.bytes="+c.min)
			adm := newAdmin(t, b)
			const topic = "zerocopy"
			createTopic(t, adm, topic, 1, nil)
			prod := newClient(t, b,
				kgo.ProducerBatchCompression(kgo.NoCompression()),
				kgo.ProducerBatchMaxBytes(valueSize+512))
			rng := rand.New(rand.NewPCG(5, 6))
			var recs []*kgo.Record
			valueBytes := 0
			for range records {
				v := randomBytes(rng, valueSize)
				valueBytes += len(v)
				recs = append(recs, &kgo.Record{Topic: topic, Value: v})
			}
			produceSync(t, prod, recs...)

			before := b.metrics(t)
			checkConsumed(t, recs, consumeTopic(t, b, topic, records))
			after := b.metrics(t)

			delta := func(name string) float64 { return metric(t, after, name) - metric(t, before, name) }
			netSendfile := delta("broker_network_sendfile_bytes_total")
			fetchSendfile := delta("broker_fetch_record_bytes_sendfile_total")
			fetchCopied := delta("broker_fetch_record_bytes_copied_total")
			t.Logf("consumed %d value bytes: network sendfile +%.0f, fetch sendfile +%.0f, fetch copied +%.0f", valueBytes, netSendfile, fetchSendfile, fetchCopied)
			if c.sendfile {
				if netSendfile < float64(valueBytes) || fetchSendfile < float64(valueBytes) {
					t.Errorf("with fetch.sendfile.min.bytes=0, consuming %d record bytes raised broker_network_sendfile_bytes_total by %.0f and broker_fetch_record_bytes_sendfile_total by %.0f; want both >= %d", valueBytes, netSendfile, fetchSendfile, valueBytes)
				}
			} else {
				if fetchCopied < float64(valueBytes) {
					t.Errorf("with fetch.sendfile.min.bytes=%s, consuming %d record bytes raised broker_fetch_record_bytes_copied_total by %.0f; want >= %d", c.min, valueBytes, fetchCopied, valueBytes)
				}
				if netSendfile != 0 || fetchSendfile != 0 {
					t.Errorf("with fetch.sendfile.min.bytes=%s, sendfile was used: network +%.0f, fetch +%.0f bytes", c.min, netSendfile, fetchSendfile)
				}
			}
		})
	}
}
