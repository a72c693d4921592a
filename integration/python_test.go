package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// debianPython is the interpreter Debian's python3-kafka and
// python3-confluent-kafka install into (a pyenv python3 on PATH would not
// see them).
const debianPython = "/usr/bin/python3"

// TestPythonClients: kafka-python and confluent-kafka-python produce with
// each codec they support and consume in a group with commits; franz-go
// reads what they wrote and they read what franz-go wrote.
func TestPythonClients(t *testing.T) {
	for _, lib := range []struct{ name, module, pkg string }{
		{"kafka-python", "kafka", "python3-kafka"},
		{"confluent-kafka", "confluent_kafka", "python3-confluent-kafka"},
	} {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			if exec.Command(debianPython, "-c", "import "+lib.module).Run() != nil {
				hint := fmt.Sprintf("%s not found: install it with `apt-get install -y %s` (or run `make test`, which installs it)", lib.name, lib.pkg)
				if os.Getenv("CI") != "" {
					t.Fatal(hint)
				}
				t.Skip(hint)
			}
			codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
			if lib.name == "kafka-python" {
				codecs = []string{"none", "gzip"} // the others need Python modules Debian does not ship with it
			}
			b := startBroker(t, t.TempDir(), groupFlags...)
			adm := newAdmin(t, b)
			for _, codec := range codecs {
				topic := lib.name + "-" + codec
				createTopic(t, adm, topic, 3, nil)
				py(t, lib.name, b.addr, "produce", topic, 30, codec)
				// franz-go reads what Python wrote.
				got := consumeTopic(t, b, topic, 30)
				var values []string
				for _, r := range got {
					values = append(values, string(r.Value))
				}
				slices.Sort(values)
				if len(values) != 30 || values[0] != codec+"-0" {
					t.Fatalf("%s: franz-go read %v", codec, values)
				}
				// Python reads it back in a group and commits.
				lines := py(t, lib.name, b.addr, "consume", topic, 30, "g-"+codec)
				if len(lines) != 30 {
					t.Fatalf("%s: the group consumer read %d records", codec, len(lines))
				}
				eventually(t, requestTimeout, "the commits to be visible", func() error {
					offs, err := adm.FetchOffsets(testCtx(t, requestTimeout), "g-"+codec)
					if err != nil {
						return err
					}
					var sum int64
					offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
					if sum != 30 {
						return fmt.Errorf("committed offsets sum to %d, want 30", sum)
					}
					return nil
				})
			}
			// Python reads what franz-go wrote (lz4).
			topic := lib.name + "-from-kgo"
			createTopic(t, adm, topic, 2, nil)
			cl := newClient(t, b, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
			var recs []*kgo.Record
			for i := range 20 {
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("kgo-%d", i))})
			}
			produceSync(t, cl, recs...)
			if lines := py(t, lib.name, b.addr, "consume", topic, 20, "g-kgo"); len(lines) != 20 {
				t.Fatalf("read %d of franz-go's records", len(lines))
			}
		})
	}
}

// py runs testdata/pyclient.py and returns its output lines.
func py(t *testing.T, lib, addr, mode, topic string, n int, arg string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	script, _ := filepath.Abs(filepath.Join("testdata", "pyclient.py"))
	out, err := exec.CommandContext(ctx, debianPython, script, lib, addr, mode, topic, fmt.Sprint(n), arg).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s %s: %v\n%s", lib, mode, topic, err, out)
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
