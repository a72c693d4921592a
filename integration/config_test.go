package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestInvalidConfig starts the broker with one bad value each and checks it
// exits with status 2 after printing one line on stderr that names the key.
func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		env  []string
		key  string
	}{
		{"flag-not-a-number", []string{"--num.partitions=abc"}, nil, "num.partitions"},
		{"env-not-a-number", nil, []string{"KAFKA_NUM_PARTITIONS=abc"}, "num.partitions"},
		{"out-of-range", []string{"--num.partitions=0"}, nil, "num.partitions"},
		{"enum", []string{"--flush.disk.type=SOMETIMES"}, nil, "flush.disk.type"},
		{"env-enum", nil, []string{"KAFKA_FLUSH_DISK_TYPE=sync"}, "flush.disk.type"},
		{"bool", []string{"--auto.create.topics.enable=yes"}, nil, "auto.create.topics.enable"},
		{"negative-size", []string{"--message.max.bytes=-1"}, nil, "message.max.bytes"},
		{"listener", []string{"--listeners=127.0.0.1:9092"}, nil, "listeners"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--listeners=PLAINTEXT://127.0.0.1:0", "--log.dirs=" + t.TempDir(), "--metrics.listener=127.0.0.1:0"}
			args = append(args, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, brokerBin, args...)
			cmd.Env = append(brokerEnv(), c.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("broker with %v %v was still running after 20s; it should refuse the value and exit 2\nstderr:\n%s", c.args, c.env, stderr.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("broker with %v %v: %v, want exit status 2", c.args, c.env, err)
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Errorf("stderr has %d lines, want one line naming %s:\n%s", len(lines), c.key, stderr.String())
			} else if !strings.Contains(lines[0], c.key) {
				t.Errorf("stderr line %q does not name %s", lines[0], c.key)
			} else {
				t.Logf("stderr: %s", lines[0])
			}
		})
	}
}

// TestEnvConfig runs a broker configured only through KAFKA_* variables
// beside one configured by flags; both serve their own data. A flag
// overrides the environment.
func TestEnvConfig(t *testing.T) {
	t.Parallel()
	a := startBroker(t, t.TempDir())
	dirB := t.TempDir()
	b := launchBroker(t, dirB, nil, []string{
		"KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:0",
		"KAFKA_LOG_DIRS=" + dirB,
		"KAFKA_LOGGER_FORMAT=json",
		"KAFKA_METRICS_LISTENER=127.0.0.1:0",
		"KAFKA_NUM_PARTITIONS=3",
	})
	if a.addr == b.addr {
		t.Fatalf("both brokers listen on %s", a.addr)
	}
	// Auto-created on produce, with the env's num.partitions.
	prodB := newClient(t, b, kgo.AllowAutoTopicCreation())
	produceSync(t, prodB, &kgo.Record{Topic: "from-env", Value: []byte("b")})
	admA, admB := newAdmin(t, a), newAdmin(t, b)
	tds, err := admB.ListTopics(testCtx(t, requestTimeout), "from-env")
	if err != nil || tds["from-env"].Err != nil {
		t.Fatalf("metadata of the auto-created topic: %v %v", err, tds["from-env"].Err)
	}
	if n := len(tds["from-env"].Partitions); n != 3 {
		t.Errorf("topic auto-created on the broker with KAFKA_NUM_PARTITIONS=3 has %d partitions", n)
	}
	if listTopicNames(t, admA)["from-env"] {
		t.Errorf("broker A lists broker B's topic")
	}
	prodA := newClient(t, a, kgo.AllowAutoTopicCreation())
	produceSync(t, prodA, &kgo.Record{Topic: "from-flags", Value: []byte("a")})
	if listTopicNames(t, admB)["from-flags"] {
		t.Errorf("broker B lists broker A's topic")
	}
	if got := consumeTopic(t, b, "from-env", 1); string(got[0].Value) != "b" {
		t.Errorf("broker B returned %q", got[0].Value)
	}
	entries, err := os.ReadDir(dirB)
	if err != nil || len(entries) == 0 {
		t.Errorf("KAFKA_LOG_DIRS=%s: the directory holds %d entries (%v); the broker did not use it", dirB, len(entries), err)
	}
	if c := describeBroker(t, admB)["log.dirs"]; c.MaybeValue() != dirB {
		t.Errorf("broker B reports log.dirs %q, want %q", c.MaybeValue(), dirB)
	}

	t.Run("flag-overrides-env", func(t *testing.T) {
		dir := t.TempDir()
		c := launchBroker(t, dir,
			[]string{"--listeners=PLAINTEXT://127.0.0.1:0", "--log.dirs=" + dir, "--logger.format=json", "--metrics.listener=127.0.0.1:0", "--num.partitions=2"},
			[]string{"KAFKA_NUM_PARTITIONS=abc"})
		prod := newClient(t, c, kgo.AllowAutoTopicCreation())
		produceSync(t, prod, &kgo.Record{Topic: "overridden", Value: []byte("c")})
		tds, err := newAdmin(t, c).ListTopics(testCtx(t, requestTimeout), "overridden")
		if err != nil || len(tds["overridden"].Partitions) != 2 {
			t.Errorf("with --num.partitions=2 and KAFKA_NUM_PARTITIONS=abc the auto-created topic has %d partitions (%v), want 2", len(tds["overridden"].Partitions), err)
		}
	})
}

// TestKRaftStyleListeners starts the broker configured as the official
// Kafka image is, in KRaft combined mode with a controller listener and two
// client listeners: the controller listener is not opened, and each client
// listener answers Metadata with its own advertised address, so a record
// produced through one is consumed through the other.
func TestKRaftStyleListeners(t *testing.T) {
	t.Parallel()
	internal, external := freePort(t), freePort(t)
	dir := t.TempDir()
	b := launchBroker(t, dir, []string{"--log.dirs=" + dir, "--logger.format=json", "--metrics.listener=127.0.0.1:0"}, []string{
		"KAFKA_NODE_ID=1",
		"KAFKA_PROCESS_ROLES=broker,controller",
		"KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:" + internal + ",CONTROLLER://127.0.0.1:0,EXTERNAL://127.0.0.1:" + external,
		"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:" + internal + ",EXTERNAL://localhost:" + external,
		"KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS=1@127.0.0.1:9093",
		"KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT",
	})
	through := func(addr string) *broker { return &broker{addr: addr} }
	for _, tc := range []struct{ seed, advertised string }{
		{"127.0.0.1:" + internal, "127.0.0.1:" + internal},
		{"127.0.0.1:" + external, "localhost:" + external},
	} {
		md, err := kadm.NewClient(newClient(t, through(tc.seed))).BrokerMetadata(testCtx(t, requestTimeout))
		if err != nil {
			t.Fatalf("metadata through %s: %v", tc.seed, err)
		}
		if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != tc.advertised {
			t.Errorf("metadata through %s: brokers %+v, want %s", tc.seed, md.Brokers, tc.advertised)
		}
	}
	createTopic(t, newAdmin(t, b), "listeners", 1, nil)
	produceSync(t, newClient(t, through("127.0.0.1:"+internal), kgo.DefaultProduceTopic("listeners")), &kgo.Record{Value: []byte("hello")})
	consumer := newClient(t, through("localhost:"+external), kgo.ConsumeTopics("listeners"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if recs := pollN(t, consumer, 1, requestTimeout); string(recs[0].Value) != "hello" {
		t.Errorf("consumed %q through the external listener, want hello", recs[0].Value)
	}
}

// freePort is a port nothing listens on a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
