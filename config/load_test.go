package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrecedence(t *testing.T) {
	files := map[string]string{
		"server.properties": `
# Kafka's own file carries keys this broker does not implement.
zookeeper.connect=localhost:2181
num.partitions=2
log.dirs=/from/file
message.max.bytes = 2000000
logger.level: debug
num.network.threads 3
`,
		"server.yaml": `
zookeeper.connect: localhost:2181
num.partitions: 2
log:
  dirs: /from/file
message.max.bytes: 2000000
logger.level: debug
num.network.threads: 3
`,
		"server.yml": `
zookeeper: {connect: "localhost:2181"}
num.partitions: 2
log.dirs: [/from/file]
message.max.bytes: 2000000
logger.level: debug
num.network.threads: 3
`,
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, name, content)
			args := []string{"--config", path, "--num.partitions=4"}
			environ := []string{"KAFKA_NUM_PARTITIONS=3", "KAFKA_LOG_DIRS=/from/env", "HOME=/root"}
			c, unknown, err := Load(args, environ)
			if err != nil {
				t.Fatal(err)
			}
			if c.NumPartitions != 4 {
				t.Errorf("NumPartitions = %d, want 4 from the flag", c.NumPartitions)
			}
			if c.LogDir != "/from/env" {
				t.Errorf("LogDir = %q, want /from/env from the environment", c.LogDir)
			}
			if c.MessageMaxBytes != 2000000 || c.LoggerLevel != "debug" {
				t.Errorf("MessageMaxBytes, LoggerLevel = %d, %q, want 2000000, debug from the file", c.MessageMaxBytes, c.LoggerLevel)
			}
			if c.FlushIntervalMs != 500 {
				t.Errorf("FlushIntervalMs = %d, want the default 500", c.FlushIntervalMs)
			}
			if want := []string{"num.network.threads", "zookeeper.connect"}; !reflect.DeepEqual(unknown, want) {
				t.Errorf("unknown keys = %q, want %q", unknown, want)
			}
		})
	}
}

func TestEnvAndFlagOverFileOnly(t *testing.T) {
	// A key set only in the file and the environment takes the environment's value.
	path := writeFile(t, "b.properties", "num.partitions=2\n")
	c, _, err := Load([]string{"--config=" + path}, []string{"KAFKA_NUM_PARTITIONS=3"})
	if err != nil || c.NumPartitions != 3 {
		t.Fatalf("Load = %v, %v; want 3 partitions from the environment", c, err)
	}
}

// testValues holds a valid, non-default value for every key, in the form
// Entries renders it.
var testValues = map[string]string{
	"advertised.listeners":                      "PLAINTEXT://broker.example:9093",
	"auto.create.topics.enable":                 "false",
	"broker.id":                                 "7",
	"cluster.id":                                "MkU3OEVBNTcwNTJENDM2Qk",
	"commitlog.segment.bytes":                   "2097152",
	"consumequeue.segment.entries":              "1000",
	"default.replication.factor":                "3",
	"fetch.sendfile.min.bytes":                  "0",
	"max.incremental.fetch.session.cache.slots": "10",
	"flush.disk.type":                           "SYNC_FLUSH",
	"flush.interval.ms":                         "100",
	"listeners":                                 "PLAINTEXT://127.0.0.1:19092",
	"log.cleanup.policy":                        "delete,compact",
	"log.dirs":                                  "/var/lib/broker",
	"log.flush.interval.messages":               "1000",
	"log.flush.interval.ms":                     "1000",
	"log.retention.check.interval.ms":           "1000",
	"checkpoint.interval.ms":                    "2000",
	"log.disk.reclaim.ratio":                    "0.8",
	"log.disk.critical.ratio":                   "0.99",
	"log.message.timestamp.type":                "LogAppendTime",
	"log.retention.bytes":                       "1073741824",
	"log.retention.hours":                       "24",
	"log.retention.minutes":                     "90",
	"log.retention.ms":                          "60000",
	"logger.format":                             "json",
	"logger.level":                              "debug",
	"max.connections":                           "100",
	"message.max.bytes":                         "2097152",
	"metrics.listener":                          "127.0.0.1:9100",
	"node.id":                                   "3",
	"num.partitions":                            "6",
	"shutdown.timeout.ms":                       "5000",
	"socket.request.max.bytes":                  "1048576",
	"group.min.session.timeout.ms":              "1000",
	"group.max.session.timeout.ms":              "600000",
	"group.initial.rebalance.delay.ms":          "0",
	"offsets.retention.minutes":                 "1440",
	"group.max.size":                            "100",
	"group.consumer.session.timeout.ms":         "30000",
	"group.consumer.heartbeat.interval.ms":      "2000",
	"group.consumer.max.size":                   "50",
	"offsets.retention.check.interval.ms":       "60000",
	"controller.listener.names":                 "CONTROLLER",
	"listener.security.protocol.map":            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
}

// TestKRaftListeners loads the listener settings of a KRaft broker as the
// official Kafka image is configured: the controller listener is not
// opened, the client listener is advertised, and a listener of any name
// whose protocol is PLAINTEXT is served.
func TestKRaftListeners(t *testing.T) {
	env := []string{
		"KAFKA_PROCESS_ROLES=broker,controller",
		"KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093,PLAINTEXT_HOST://0.0.0.0:29092",
		"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://broker:9092,PLAINTEXT_HOST://localhost:29092",
		"KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS=1@localhost:9093",
	}
	c, _, err := Load(nil, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Kafka's own config/kraft/server.properties advertises its controller
	// listener too, which clients are never given.
	if _, _, err := Load(nil, append(slices.Clone(env), "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://broker:9092,PLAINTEXT_HOST://localhost:29092,CONTROLLER://localhost:9093")); err != nil {
		t.Fatalf("Load with the controller listener advertised: %v", err)
	}
	var served []string
	for _, l := range c.ClientListeners() {
		served = append(served, l.String()+" -> "+c.AdvertisedFor(l).String())
	}
	want := []string{"PLAINTEXT://:9092 -> PLAINTEXT://broker:9092", "PLAINTEXT_HOST://0.0.0.0:29092 -> PLAINTEXT_HOST://localhost:29092"}
	if !slices.Equal(served, want) {
		t.Errorf("served listeners %q, want %q", served, want)
	}

	for _, tc := range []struct {
		name string
		env  []string
		key  string
	}{
		{"an SSL listener", []string{"KAFKA_LISTENERS=SSL://:9093"}, "listeners"},
		{"a listener missing from the protocol map", []string{"KAFKA_LISTENERS=INTERNAL://:9093"}, "listeners"},
		{"only a controller listener", []string{"KAFKA_LISTENERS=CONTROLLER://:9093", "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT"}, "listeners"},
		{"only the controller listener advertised", []string{"KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093", "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
			"KAFKA_ADVERTISED_LISTENERS=CONTROLLER://localhost:9093"}, "advertised.listeners"},
		{"two listeners on one port", []string{"KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:9092,EXTERNAL://:9092",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"}, "listeners"},
		{"an unknown security protocol", []string{"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=PLAINTEXT:TLS"}, "listener.security.protocol.map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(nil, tc.env)
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != tc.key {
				t.Errorf("Load = %v, want an error for %s", err, tc.key)
			}
		})
	}
}

func TestEveryKeyFromEnvAndFlag(t *testing.T) {
	sources := map[string]func(name, value string) (args, environ []string){
		"env": func(name, value string) ([]string, []string) {
			return nil, []string{envName(name) + "=" + value}
		},
		"flag": func(name, value string) ([]string, []string) {
			return []string{"--" + name + "=" + value}, nil
		},
		"properties": func(name, value string) ([]string, []string) {
			return []string{"--config", writeFile(t, "k.properties", name+"="+value+"\n")}, nil
		},
	}
	for _, e := range Default().Entries() {
		value, ok := testValues[e.Name]
		if !ok {
			t.Errorf("no test value for key %s", e.Name)
			continue
		}
		if value == e.Value {
			t.Errorf("test value for %s is its default", e.Name)
		}
		for source, input := range sources {
			t.Run(e.Name+"/"+source, func(t *testing.T) {
				c, _, err := Load(input(e.Name, value))
				if err != nil {
					t.Fatal(err)
				}
				for _, got := range c.Entries() {
					if got.Name == e.Name && (got.Value != value || got.Default) {
						t.Errorf("entry = %+v, want value %q, not default", got, value)
					}
				}
			})
		}
	}
}

func TestEnvNames(t *testing.T) {
	for key, env := range map[string]string{
		"log.dirs":                  "KAFKA_LOG_DIRS",
		"commitlog.segment.bytes":   "KAFKA_COMMITLOG_SEGMENT_BYTES",
		"auto.create.topics.enable": "KAFKA_AUTO_CREATE_TOPICS_ENABLE",
		"advertised.listeners":      "KAFKA_ADVERTISED_LISTENERS",
	} {
		if got := envName(key); got != env {
			t.Errorf("envName(%q) = %q, want %q", key, got, env)
		}
	}
}

func TestIgnoredEnvironment(t *testing.T) {
	environ := []string{
		"KAFKA_HEAP_OPTS=-Xmx1G",
		"KAFKA_PROCESS_ROLES=broker,controller",
		"KAFKA_NUM_PARTITIONS=", // empty counts as unset
		"KAFKA_CONFIG=/nonexistent.properties",
		"PATH=/usr/bin",
		"NOEQUALS",
	}
	c, _, err := Load(nil, environ)
	if err != nil {
		t.Fatal(err)
	}
	if c.NumPartitions != 1 {
		t.Errorf("NumPartitions = %d, want the default", c.NumPartitions)
	}
}

func TestInvalidValues(t *testing.T) {
	badFile := writeFile(t, "bad.properties", "num.partitions=many\n")
	tests := []struct {
		name    string
		args    []string
		environ []string
		key     string
		want    []string // substrings of the message besides the key
	}{
		{"not a number", nil, []string{"KAFKA_NUM_PARTITIONS=abc"}, "num.partitions",
			[]string{`"abc"`, "env KAFKA_NUM_PARTITIONS", "an integer between 1 and 1000000"}},
		{"zero partitions", []string{"--num.partitions=0"}, nil, "num.partitions",
			[]string{`"0"`, "flag --num.partitions"}},
		{"from file", []string{"--config", badFile}, nil, "num.partitions",
			[]string{`"many"`, "file " + badFile}},
		{"int32 overflow", []string{"--message.max.bytes=99999999999"}, nil, "message.max.bytes",
			[]string{"99999999999", "2147483647"}},
		{"not a boolean", []string{"--auto.create.topics.enable=yes"}, nil, "auto.create.topics.enable",
			[]string{`"yes"`, "true or false"}},
		{"unknown enum", []string{"--flush.disk.type=async"}, nil, "flush.disk.type",
			[]string{`"async"`, "ASYNC_FLUSH, SYNC_FLUSH"}},
		{"unknown log level", nil, []string{"KAFKA_LOGGER_LEVEL=verbose"}, "logger.level",
			[]string{"debug, info, warn, error"}},
		{"unknown cleanup policy", []string{"--log.cleanup.policy=forever"}, nil, "log.cleanup.policy",
			[]string{`"forever"`}},
		{"SSL listener", nil, []string{"KAFKA_LISTENERS=PLAINTEXT://:9092,SSL://:9093"}, "listeners",
			[]string{`"SSL://:9093"`, "PLAINTEXT"}},
		{"listener without scheme", []string{"--listeners=localhost:9092"}, nil, "listeners",
			[]string{"NAME://host:port"}},
		{"listener port out of range", []string{"--listeners=PLAINTEXT://:99999"}, nil, "listeners",
			[]string{"between 0 and 65535"}},
		{"listener port not a number", []string{"--listeners=PLAINTEXT://:http"}, nil, "listeners",
			[]string{"numeric port"}},
		{"listener twice", []string{"--listeners=PLAINTEXT://:9092,PLAINTEXT://:9093"}, nil, "listeners",
			[]string{"at most once"}},
		{"wildcard advertised", []string{"--advertised.listeners=PLAINTEXT://0.0.0.0:9092"}, nil, "advertised.listeners",
			[]string{"0.0.0.0", "clients can connect to"}},
		{"two log dirs", []string{"--log.dirs=/a,/b"}, nil, "log.dirs",
			[]string{`"/a,/b"`, "exactly one directory"}},
		{"segment below 64 KiB", []string{"--commitlog.segment.bytes=1024"}, nil, "commitlog.segment.bytes",
			[]string{"between 65536 and 2147483647"}},
		{"segment below a message", []string{"--commitlog.segment.bytes=1048576"}, nil, "commitlog.segment.bytes",
			[]string{`"1048576"`, "message.max.bytes + 4096 = 1052684"}},
		{"retention hours below -1", []string{"--log.retention.hours=-5"}, nil, "log.retention.hours",
			[]string{`"-5"`}},
		{"metrics without port", []string{"--metrics.listener=localhost"}, nil, "metrics.listener",
			[]string{`"localhost"`, "host:port"}},
		{"broker.id disagrees with node.id", []string{"--broker.id=2"}, []string{"KAFKA_NODE_ID=3"}, "broker.id",
			[]string{`"2"`, "node.id (3)", "flag --broker.id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(tt.args, tt.environ)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", c)
			}
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != tt.key {
				t.Fatalf("error %q is not a ValueError for %s", err, tt.key)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			for _, want := range append(tt.want, tt.key) {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestAliasAgreeing(t *testing.T) {
	c, _, err := Load([]string{"--broker.id=4"}, []string{"KAFKA_NODE_ID=4"})
	if err != nil || c.NodeID != 4 {
		t.Fatalf("Load = %v, %v; want node 4", c, err)
	}
}

func TestListeners(t *testing.T) {
	tests := []struct {
		listeners, advertised string
		wantListen, wantAdv   []Listener
	}{
		{"PLAINTEXT://127.0.0.1:19092", "",
			[]Listener{{"PLAINTEXT", "127.0.0.1", 19092}}, []Listener{{"PLAINTEXT", "127.0.0.1", 19092}}},
		{"PLAINTEXT://:9092", "",
			[]Listener{{"PLAINTEXT", "", 9092}}, []Listener{{"PLAINTEXT", "localhost", 9092}}},
		{"PLAINTEXT://0.0.0.0:9092", "",
			[]Listener{{"PLAINTEXT", "0.0.0.0", 9092}}, []Listener{{"PLAINTEXT", "localhost", 9092}}},
		{" plaintext://[::]:0 ", "",
			[]Listener{{"PLAINTEXT", "::", 0}}, []Listener{{"PLAINTEXT", "localhost", 0}}},
		{"PLAINTEXT://[::1]:9092,", "",
			[]Listener{{"PLAINTEXT", "::1", 9092}}, []Listener{{"PLAINTEXT", "::1", 9092}}},
		{"PLAINTEXT://:9092", "PLAINTEXT://broker-1.internal:19092",
			[]Listener{{"PLAINTEXT", "", 9092}}, []Listener{{"PLAINTEXT", "broker-1.internal", 19092}}},
	}
	for _, tt := range tests {
		environ := []string{"KAFKA_LISTENERS=" + tt.listeners}
		if tt.advertised != "" {
			environ = append(environ, "KAFKA_ADVERTISED_LISTENERS="+tt.advertised)
		}
		c, _, err := Load(nil, environ)
		if err != nil {
			t.Errorf("%q: %v", tt.listeners, err)
			continue
		}
		if !reflect.DeepEqual(c.Listeners, tt.wantListen) || !reflect.DeepEqual(c.AdvertisedListeners, tt.wantAdv) {
			t.Errorf("%q, %q: listeners %+v advertised %+v, want %+v and %+v",
				tt.listeners, tt.advertised, c.Listeners, c.AdvertisedListeners, tt.wantListen, tt.wantAdv)
		}
	}
}

func TestRetentionPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		file    string
		want    int64
	}{
		{"default is 168 hours", nil, nil, "", 168 * 3600000},
		{"hours", []string{"--log.retention.hours=1"}, nil, "", 3600000},
		{"minutes over hours", []string{"--log.retention.hours=1", "--log.retention.minutes=2"}, nil, "", 120000},
		{"ms over minutes and hours", []string{"--log.retention.hours=1", "--log.retention.minutes=2", "--log.retention.ms=5"}, nil, "", 5},
		// The more precise key wins whatever its source: Kafka ranks the
		// keys, and the sources only rank values of the same key.
		{"ms in file over hours in flag", []string{"--log.retention.hours=1"}, nil, "log.retention.ms=7\n", 7},
		{"minutes in env over hours in flag", []string{"--log.retention.hours=1"}, []string{"KAFKA_LOG_RETENTION_MINUTES=3"}, "", 180000},
		{"forever in minutes", []string{"--log.retention.minutes=-1"}, nil, "", -1},
		{"forever in hours", nil, []string{"KAFKA_LOG_RETENTION_HOURS=-1"}, "", -1},
		{"ms forever over hours", []string{"--log.retention.ms=-1", "--log.retention.hours=1"}, nil, "", -1},
		{"zero hours", []string{"--log.retention.hours=0"}, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "r.properties", tt.file))
			}
			c, _, err := Load(args, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if c.LogRetentionMs != tt.want {
				t.Errorf("LogRetentionMs = %d, want %d", c.LogRetentionMs, tt.want)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	if _, _, err := Load([]string{"--help"}, nil); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v, want pflag.ErrHelp", err)
	}
	if _, _, err := Load([]string{"--num.partition=3"}, nil); err == nil || !strings.Contains(err.Error(), "num.partition") {
		t.Errorf("misspelt flag: %v", err)
	}
	if _, _, err := Load([]string{"serve"}, nil); err == nil || !strings.Contains(err.Error(), `"serve"`) {
		t.Errorf("positional argument: %v", err)
	}
	// Flags other than booleans may take their value as the next argument;
	// a boolean flag without a value means true.
	c, _, err := Load([]string{"--auto.create.topics.enable=false", "--log.dirs", "/x"}, nil)
	if err != nil || c.AutoCreateTopics || c.LogDir != "/x" {
		t.Errorf("Load = %+v, %v", c, err)
	}
	c, _, err = Load([]string{"--auto.create.topics.enable"}, []string{"KAFKA_AUTO_CREATE_TOPICS_ENABLE=false"})
	if err != nil || !c.AutoCreateTopics {
		t.Errorf("bare boolean flag: %+v, %v", c, err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"unsupported extension", "server.json", `{"num.partitions": 2}`, ".properties, .yaml or .yml"},
		{"bad YAML", "server.yaml", "num.partitions: [1\n", "server.yaml"},
		{"YAML not a mapping", "server.yaml", "- a\n- b\n", "cannot unmarshal"},
		{"YAML map in a list", "server.yaml", "listeners:\n  - a: b\n", "listeners: expected a value"},
		{"bad escape", "server.properties", "cluster.id=\\u12\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load([]string{"--config", writeFile(t, tt.file, tt.content)}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.want)
			}
		})
	}
	_, _, err := Load([]string{"--config", filepath.Join(t.TempDir(), "missing.properties")}, nil)
	if err == nil || !strings.Contains(err.Error(), "missing.properties") {
		t.Errorf("missing file: %v", err)
	}
}

func TestUpperCaseExtension(t *testing.T) {
	c, _, err := Load([]string{"--config", writeFile(t, "SERVER.YML", "num.partitions: 5\n")}, nil)
	if err != nil || c.NumPartitions != 5 {
		t.Fatalf("Load = %v, %v", c, err)
	}
}
