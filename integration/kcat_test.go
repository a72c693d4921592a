package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const kcatHint = "kcat not found: install it with `apt-get install -y kcat` (or run `make test`, which installs it)"

// requireKcat returns kcat's path. Without kcat the test fails under CI
// and is skipped elsewhere.
func requireKcat(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(kcatHint)
		}
		t.Skip(kcatHint)
	}
	return path
}

// kcatFeatures lists librdkafka's builtin.features from kcat -V.
func kcatFeatures(t testing.TB, kcat string) []string {
	t.Helper()
	out, err := exec.Command(kcat, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -V: %v\n%s", err, out)
	}
	s := string(out)
	i := strings.Index(s, "builtin.features=")
	if i < 0 {
		return nil
	}
	s = s[i+len("builtin.features="):]
	if j := strings.IndexAny(s, ") \n"); j >= 0 {
		s = s[:j]
	}
	return strings.Split(s, ",")
}

// runKcat runs kcat with stdin and returns its stdout, failing on a
// non-zero exit or after 60s.
func runKcat(t testing.TB, kcat string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kcat %q did not finish within 60s\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("kcat %q: %v\nstderr:\n%s", args, err, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "ERROR") || strings.Contains(s, "FAIL") {
		t.Errorf("kcat %q reported errors:\n%s", args, s)
	}
	return stdout.String()
}

// TestKcat produces and consumes with kcat (librdkafka), with every codec
// it supports, and crosses over with franz-go both ways.
func TestKcat(t *testing.T) {
	t.Parallel()
	kcat := requireKcat(t)
	features := kcatFeatures(t, kcat)
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)

	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run("produce-consume-"+codec, func(t *testing.T) {
			if codec != "none" && !slices.Contains(features, codec) {
				t.Skipf("this kcat's librdkafka lacks %s (builtin.features=%v)", codec, features)
			}
			topic := "kcat-" + codec
			createTopic(t, adm, topic, 1, nil)
			var in strings.Builder
			for i := range 200 {
				fmt.Fprintf(&in, "key-%d:%s value %d %s\n", i, codec, i, strings.Repeat("x", i%50))
			}
			args := []string{"-P", "-b", b.addr, "-t", topic, "-K:"}
			if codec != "none" {
				args = append(args, "-z", codec)
			}
			runKcat(t, kcat, in.String(), args...)
			out := runKcat(t, kcat, "", "-C", "-b", b.addr, "-t", topic, "-o", "beginning", "-e", "-f", "%k:%s\n")
			if out != in.String() {
				t.Errorf("kcat consumed\n%.600s\nwant\n%.600s", out, in.String())
			}
			// librdkafka really compressed: the broker stores batches as
			// sent. librdkafka before 2.10 only compresses with gzip,
			// snappy or lz4 when ApiVersions lists Produce v0 (and, for
			// lz4, FindCoordinator v0); Kafka 4.0 still lists Produce
			// v0-v2 for that reason (KAFKA-18659) though it rejects them.
			if codec != "none" {
				want := map[string]int16{"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
				fp := rawFetch(t, newClient(t, b), topic, topicID(t, adm, topic), 0, 0, 0)
				// librdkafka sends a batch uncompressed when compressing
				// does not shrink it (a lone small record), so only ask
				// that some batch, and no other codec, was used.
				compressed := 0
				var seen []string
				for _, batch := range batchesOf(t, fp.RecordBatches) {
					c := batch.Attributes & 7
					seen = append(seen, fmt.Sprintf("offset %d: %d records codec %d", batch.FirstOffset, batch.NumRecords, c))
					switch c {
					case want:
						compressed++
					case 0:
					default:
						t.Errorf("kcat -z %s: batch at offset %d stored with codec %d", codec, batch.FirstOffset, c)
					}
				}
				if compressed == 0 {
					t.Errorf("kcat -z %s: no batch arrived compressed (%v): librdkafka did not compress (run kcat with -d feature,msg to see why)", codec, seen)
				}
			}
		})
	}

	t.Run("kcat-writes-kgo-reads", func(t *testing.T) {
		const topic = "kcat-to-kgo"
		createTopic(t, adm, topic, 1, nil)
		var in strings.Builder
		for i := range 100 {
			fmt.Fprintf(&in, "k%d:v%d\n", i, i)
		}
		runKcat(t, kcat, in.String(), "-P", "-b", b.addr, "-t", topic, "-K:", "-H", "origin=kcat", "-H", "n=1")
		got := consumeTopic(t, b, topic, 100)
		for i, r := range got {
			want := []kgo.RecordHeader{{Key: "origin", Value: []byte("kcat")}, {Key: "n", Value: []byte("1")}}
			if string(r.Key) != fmt.Sprintf("k%d", i) || string(r.Value) != fmt.Sprintf("v%d", i) || r.Offset != int64(i) ||
				len(r.Headers) != 2 || r.Headers[0].Key != want[0].Key || string(r.Headers[0].Value) != "kcat" || r.Headers[1].Key != "n" || string(r.Headers[1].Value) != "1" {
				t.Errorf("kgo read offset %d key %q value %q headers %v; want offset %d k%d:v%d headers origin=kcat,n=1", r.Offset, r.Key, r.Value, r.Headers, i, i, i)
			}
		}
	})

	t.Run("kgo-writes-kcat-reads", func(t *testing.T) {
		const topic = "kgo-to-kcat"
		createTopic(t, adm, topic, 1, nil)
		for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression(), kgo.GzipCompression()} {
			prod := newClient(t, b, kgo.ProducerBatchCompression(codec))
			var recs []*kgo.Record
			for range 50 {
				i := len(recs)
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d %s", i, strings.Repeat("abc", 20))),
					Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("kgo")}}})
			}
			produceSync(t, prod, recs...)
		}
		out := runKcat(t, kcat, "", "-C", "-b", b.addr, "-t", topic, "-o", "beginning", "-e", "-f", "%o|%k|%s|%h\n")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 150 {
			t.Fatalf("kcat read %d records, want 150:\n%.500s", len(lines), out)
		}
		for i, line := range lines {
			want := fmt.Sprintf("%d|k%d|v%d %s|origin=kgo", i, i%50, i%50, strings.Repeat("abc", 20))
			if line != want {
				t.Errorf("kcat line %d: %q, want %q", i, line, want)
			}
		}
	})

	t.Run("metadata", func(t *testing.T) {
		createTopic(t, adm, "kcat-meta", 2, nil)
		out := runKcat(t, kcat, "", "-L", "-b", b.addr, "-t", "kcat-meta")
		if !strings.Contains(out, `topic "kcat-meta" with 2 partitions`) || !strings.Contains(out, "1 brokers") {
			t.Errorf("kcat -L output:\n%s", out)
		}
	})
}
