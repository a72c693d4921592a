// Package integration runs the broker binary as a user would and talks to
// it with real Kafka clients (franz-go, and kcat in kcat_test.go).
//
// TestMain builds ./cmd/broker once; every test starts its own broker
// process on a free port with its own data directory. Nothing here sleeps
// to synchronise: waits are on log lines, process exit, client responses or
// polls with a deadline, so a broken broker fails a test instead of hanging
// it.
//
// Environment:
//
//	BROKER_BIN=path   use this broker binary instead of building one
//	BROKER_RACE=1     build the broker with -race
//	BROKER_TEST_CLIENT_LOG=debug|info|warn|error
//	                  franz-go log level shown for failed tests (info)
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	startTimeout   = 30 * time.Second // from exec to "broker listening"
	stopTimeout    = 45 * time.Second // from SIGTERM to exit (shutdown.timeout.ms defaults to 30s)
	requestTimeout = 30 * time.Second // any single client operation
)

// brokerBin is the broker binary under test, built by TestMain.
var brokerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("BROKER_BIN"); bin != "" {
		brokerBin = bin
		return m.Run()
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: finding the module root:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "broker-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	brokerBin = filepath.Join(tmp, "broker")
	args := []string{"build", "-o", brokerBin}
	if os.Getenv("BROKER_RACE") != "" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/broker")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go %s (in %s) failed: %v\n%s", strings.Join(args, " "), root, err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	root, aerr := filepath.Abs("..")
	if aerr != nil {
		return "", aerr
	}
	if _, serr := os.Stat(filepath.Join(root, "go.mod")); serr != nil {
		return "", fmt.Errorf("go env GOMOD: %v; ../go.mod: %v", err, serr)
	}
	return root, nil
}

// ---------------------------------------------------------------------------
// Broker processes

// broker is one running broker process.
type broker struct {
	dir         string // data directory
	addr        string // Kafka listener, host:port
	metricsAddr string // HTTP /metrics, host:port
	cmd         *exec.Cmd
	log         *logBuffer
	done        chan struct{} // closed when the process has exited
	stopOnce    sync.Once     // guards the one intended end: stop, kill or a goroutine dump
	ended       atomic.Bool   // the test ended the process on purpose
}

// startBroker starts the broker on a free port with data in dir (a
// directory already used by an earlier broker is reused, as after a
// restart). extra flags (--key=value) are appended and override the
// defaults. The broker is stopped, with the same checks as stop, when the
// test ends; its log is dumped if the test failed.
func startBroker(t testing.TB, dir string, extra ...string) *broker {
	t.Helper()
	args := []string{
		"--listeners=PLAINTEXT://127.0.0.1:0",
		"--log.dirs=" + dir,
		"--logger.format=json",
		"--metrics.listener=127.0.0.1:0",
	}
	return launchBroker(t, dir, append(args, extra...), nil)
}

// launchBroker runs the binary with exactly args and env (added to a copy
// of this process's environment without KAFKA_* variables) and waits for
// its "broker listening" and "metrics listening" lines.
func launchBroker(t testing.TB, dir string, args, env []string) *broker {
	t.Helper()
	b := &broker{dir: dir, log: newLogBuffer(), done: make(chan struct{})}
	b.cmd = exec.Command(brokerBin, args...)
	b.cmd.Env = append(brokerEnv(), env...)
	b.cmd.Stdout = b.log
	b.cmd.Stderr = b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", brokerBin, err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		switch {
		case !b.exited():
			b.stop(t)
		case !b.ended.Load():
			t.Errorf("broker %s exited on its own during the test: %v", b.addr, b.cmd.ProcessState)
		}
		if t.Failed() {
			t.Logf("log of broker %s (pid %d, dir %s, args %q):\n%s", b.addr, b.cmd.Process.Pid, b.dir, args, b.log.tail(3000))
		}
	})

	deadline := time.Now().Add(startTimeout)
	fields, err := b.waitLog("broker listening", deadline)
	if err != nil {
		b.dumpGoroutines()
		t.Fatalf("broker did not start: %v (its log, with a goroutine dump if it hung, follows)", err)
	}
	b.addr, _ = fields["addr"].(string)
	if b.addr == "" {
		t.Fatalf(`"broker listening" line has no addr field: %v`, fields)
	}
	if fields, err = b.waitLog("metrics listening", deadline); err != nil {
		t.Fatalf("broker metrics listener did not start: %v (its log follows)", err)
	}
	b.metricsAddr, _ = fields["addr"].(string)
	return b
}

// brokerEnv is the environment of this process minus any KAFKA_* variable,
// which the broker would read as configuration.
func brokerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAFKA_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitLog waits until the broker logs a line with this msg, returning its
// fields, or fails if the process exits or the deadline passes first.
func (b *broker) waitLog(msg string, deadline time.Time) (map[string]any, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		fields, changed := b.log.find(msg)
		if fields != nil {
			return fields, nil
		}
		select {
		case <-changed:
		case <-b.done:
			if fields, _ := b.log.find(msg); fields != nil {
				return fields, nil
			}
			return nil, fmt.Errorf("process exited (%v) before logging %q", b.cmd.ProcessState, msg)
		case <-timer.C:
			return nil, fmt.Errorf("no %q line within %v", msg, startTimeout)
		}
	}
}

func (b *broker) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and checks the broker exits with status 0 after
// logging "clean shutdown".
func (b *broker) stop(t testing.TB) {
	t.Helper()
	b.stopOnce.Do(func() {
		b.ended.Store(true)
		if b.exited() {
			t.Errorf("broker %s had already exited (%v) when it was to be stopped", b.addr, b.cmd.ProcessState)
			return
		}
		start := time.Now()
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("sending SIGTERM to the broker: %v", err)
		}
		select {
		case <-b.done:
		case <-time.After(stopTimeout):
			b.quit()
			t.Errorf("broker %s did not exit within %v of SIGTERM; it was made to dump its goroutines (in its log)", b.addr, stopTimeout)
			return
		}
		if code := b.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("broker %s exited with status %d after SIGTERM, want 0 (%v)", b.addr, code, b.cmd.ProcessState)
		}
		if strings.Contains(b.log.tail(1<<30), "WARNING: DATA RACE") {
			t.Errorf("broker %s reported a data race (see its log)", b.addr)
		}
		if fields, _ := b.log.find("clean shutdown"); fields == nil {
			t.Errorf(`broker %s did not log "clean shutdown" after SIGTERM`, b.addr)
		}
		t.Logf("broker %s stopped in %v", b.addr, time.Since(start).Round(time.Millisecond))
	})
}

// dumpGoroutines makes a hung broker print its goroutines (SIGQUIT) and
// exit, killing it if it does not within 5s.
func (b *broker) dumpGoroutines() {
	b.stopOnce.Do(func() {
		b.ended.Store(true)
		b.quit()
	})
}

func (b *broker) quit() {
	_ = b.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// bytesWritten is how many bytes the broker process has written with
// write-family system calls so far (wchar in /proc/PID/io), or -1 where
// that is not available.
func (b *broker) bytesWritten(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", b.cmd.Process.Pid))
	if err != nil {
		t.Logf("cannot read the broker's I/O counters: %v", err)
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// kill ends the broker with SIGKILL and waits for it to be gone.
func (b *broker) kill() {
	b.stopOnce.Do(func() {
		b.ended.Store(true)
		_ = b.cmd.Process.Kill()
		<-b.done
	})
}

// logBuffer collects the broker's output and parses its JSON lines.
type logBuffer struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	partial []byte
	lines   []map[string]any
	changed chan struct{} // closed and replaced on every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		var fields map[string]any
		if json.Unmarshal(l.partial[:i], &fields) == nil {
			l.lines = append(l.lines, fields)
		}
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// find returns the fields of the first line whose msg is msg, or nil and a
// channel closed on the next write.
func (l *logBuffer) find(msg string) (map[string]any, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.lines {
		if f["msg"] == msg {
			return f, nil
		}
	}
	return nil, l.changed
}

// tail returns the last n lines of output.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.SplitAfter(l.raw.String(), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// ---------------------------------------------------------------------------
// Clients

// testCtx is a context that ends after d or when the test ends.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a goroutine-safe buffer for client logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newClient returns a franz-go client seeded with b, closed when the test
// ends; its warnings are shown if the test fails.
func newClient(t testing.TB, b *broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	logs := &syncBuffer{}
	base := []kgo.Opt{
		kgo.SeedBrokers(b.addr),
		kgo.ClientID("integration-test"),
		kgo.RecordDeliveryTimeout(requestTimeout),
		kgo.RetryTimeout(requestTimeout),
		kgo.WithLogger(kgo.BasicLogger(logs, clientLogLevel(), nil)),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if s := logs.String(); s != "" {
				t.Logf("franz-go client log (broker %s):\n%s", b.addr, s)
			}
		}
	})
	t.Cleanup(cl.Close)
	return cl
}

// clientLogLevel is franz-go's log level, shown for failed tests:
// BROKER_TEST_CLIENT_LOG=debug|info|warn|error, info by default.
func clientLogLevel() kgo.LogLevel {
	switch os.Getenv("BROKER_TEST_CLIENT_LOG") {
	case "debug":
		return kgo.LogLevelDebug
	case "warn":
		return kgo.LogLevelWarn
	case "error":
		return kgo.LogLevelError
	}
	return kgo.LogLevelInfo
}

// newAdmin returns an admin client whose metadata is never older than
// 10ms (kadm answers ListTopics from the client's metadata cache, 5s by
// default), so topics created or deleted a moment ago show as they are.
func newAdmin(t testing.TB, b *broker) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, b, kgo.MetadataMinAge(10*time.Millisecond)))
}

// withAdmin runs fn with an admin client that is closed when fn returns,
// for tests that need the broker free of other connections.
func withAdmin(t testing.TB, b *broker, fn func(*kadm.Client)) {
	t.Helper()
	cl := newClient(t, b, kgo.MetadataMinAge(10*time.Millisecond))
	defer cl.Close()
	fn(kadm.NewClient(cl))
}

// createTopic creates topic with one replica, fails the test on error and
// returns the new topic's ID.
func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) [16]byte {
	t.Helper()
	resp, err := adm.CreateTopics(testCtx(t, requestTimeout), partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	r, ok := resp[topic]
	if !ok {
		t.Fatalf("CreateTopics %s: topic missing from response %v", topic, resp)
	}
	if r.Err != nil {
		t.Fatalf("CreateTopics %s (%d partitions, configs %v): %v %s", topic, partitions, configs, r.Err, r.ErrMessage)
	}
	return r.ID
}

// topicID looks a topic's ID up in metadata.
func topicID(t testing.TB, adm *kadm.Client, topic string) [16]byte {
	t.Helper()
	tds, err := adm.ListTopics(testCtx(t, requestTimeout), topic)
	if err != nil {
		t.Fatalf("metadata for %s: %v", topic, err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		t.Fatalf("metadata for %s: %v (found %v)", topic, td.Err, ok)
	}
	return td.ID
}

// produceSync produces recs and fails the test if any is not acknowledged;
// on return each record has its partition and offset set.
func produceSync(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	results := cl.ProduceSync(testCtx(t, requestTimeout), recs...)
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("producing record %d of %d (topic %s): %v", i, len(recs), r.Record.Topic, r.Err)
		}
	}
}

// consumeTopic reads topic from its start with a new client until want
// records arrived, failing on a fetch error that is not retriable, on
// more records than want, or after requestTimeout.
func consumeTopic(t testing.TB, b *broker, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	base := []kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second),
	}
	cl := newClient(t, b, append(base, opts...)...)
	defer cl.Close()
	return pollN(t, cl, want, requestTimeout)
}

// pollN polls cl until it has returned n records.
func pollN(t testing.TB, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	var retriable []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			switch {
			case errors.Is(e.Err, context.DeadlineExceeded), errors.Is(e.Err, context.Canceled):
			case kerr.IsRetriable(e.Err):
				retriable = append(retriable, fmt.Sprintf("%s/%d: %v", e.Topic, e.Partition, e.Err))
			default:
				t.Fatalf("fetch error on %s/%d after %d of %d records: %v", e.Topic, e.Partition, len(out), n, e.Err)
			}
		}
		out = append(out, fs.Records()...)
		if ctx.Err() != nil && len(out) < n {
			t.Fatalf("consumed %d of %d records within %v (retriable fetch errors seen: %q)", len(out), n, timeout, lastN(retriable, 5))
		}
	}
	if len(out) > n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// checkConsumed checks that got holds exactly the produced records (with
// the partitions and offsets the produce acknowledged), that each
// partition's offsets run 0, 1, 2, ... in the order they were consumed, and
// that keys, values, headers and timestamps came back unchanged.
func checkConsumed(t testing.TB, produced, got []*kgo.Record) {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	want := make(map[po]*kgo.Record, len(produced))
	next := map[int32]int64{}
	for _, r := range produced {
		k := po{r.Partition, r.Offset}
		if prev, dup := want[k]; dup {
			t.Fatalf("two produced records acknowledged at partition %d offset %d: %q and %q", r.Partition, r.Offset, prev.Value, r.Value)
		}
		want[k] = r
	}
	// Produced records of one partition must have increasing offsets in
	// the order they were produced.
	lastProduced := map[int32]int64{}
	for _, r := range produced {
		if last, ok := lastProduced[r.Partition]; ok && r.Offset <= last {
			t.Errorf("partition %d: record produced after offset %d was acknowledged at offset %d", r.Partition, last, r.Offset)
		}
		lastProduced[r.Partition] = r.Offset
	}
	bad := 0
	for _, r := range got {
		if exp := next[r.Partition]; r.Offset != exp {
			t.Fatalf("partition %d: consumed offset %d, want %d (offsets must run 0, 1, 2, ... with no gap or repeat)", r.Partition, r.Offset, exp)
		}
		next[r.Partition] = r.Offset + 1
		w, ok := want[po{r.Partition, r.Offset}]
		if !ok {
			t.Errorf("consumed partition %d offset %d (value %.40q) that no produce acknowledged", r.Partition, r.Offset, r.Value)
			bad++
		} else if diff := recordDiff(w, r); diff != "" {
			t.Errorf("partition %d offset %d: %s", r.Partition, r.Offset, diff)
			bad++
		}
		delete(want, po{r.Partition, r.Offset})
		if bad > 10 {
			t.Fatalf("too many mismatches")
		}
	}
	if len(want) > 0 {
		t.Errorf("%d produced records were not consumed", len(want))
	}
}

// recordDiff describes how got differs from want, or returns "".
func recordDiff(want, got *kgo.Record) string {
	var d []string
	if !bytes.Equal(want.Key, got.Key) || (want.Key == nil) != (got.Key == nil) {
		d = append(d, fmt.Sprintf("key %.40q (nil %v), want %.40q (nil %v)", got.Key, got.Key == nil, want.Key, want.Key == nil))
	}
	if !bytes.Equal(want.Value, got.Value) || (want.Value == nil) != (got.Value == nil) {
		d = append(d, fmt.Sprintf("value %.40q (%d bytes, nil %v), want %.40q (%d bytes, nil %v)", got.Value, len(got.Value), got.Value == nil, want.Value, len(want.Value), want.Value == nil))
	}
	if len(want.Headers) != len(got.Headers) {
		d = append(d, fmt.Sprintf("%d headers %v, want %d %v", len(got.Headers), got.Headers, len(want.Headers), want.Headers))
	} else {
		for i := range want.Headers {
			if want.Headers[i].Key != got.Headers[i].Key || !bytes.Equal(want.Headers[i].Value, got.Headers[i].Value) {
				d = append(d, fmt.Sprintf("header %d %q=%q, want %q=%q", i, got.Headers[i].Key, got.Headers[i].Value, want.Headers[i].Key, want.Headers[i].Value))
			}
		}
	}
	if want.Timestamp.UnixMilli() != got.Timestamp.UnixMilli() {
		d = append(d, fmt.Sprintf("timestamp %d, want %d", got.Timestamp.UnixMilli(), want.Timestamp.UnixMilli()))
	}
	return strings.Join(d, "; ")
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	return listed(t, topic, "ListEndOffsets")(adm.ListEndOffsets(testCtx(t, requestTimeout), topic))
}

func startOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	return listed(t, topic, "ListStartOffsets")(adm.ListStartOffsets(testCtx(t, requestTimeout), topic))
}

func listed(t testing.TB, topic, what string) func(kadm.ListedOffsets, error) map[int32]int64 {
	return func(l kadm.ListedOffsets, err error) map[int32]int64 {
		t.Helper()
		if err != nil {
			t.Fatalf("%s %s: %v", what, topic, err)
		}
		out := map[int32]int64{}
		for p, o := range l[topic] {
			if o.Err != nil {
				t.Fatalf("%s %s partition %d: %v", what, topic, p, o.Err)
			}
			out[p] = o.Offset
		}
		return out
	}
}

// countByPartition counts records per partition.
func countByPartition(recs []*kgo.Record) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range recs {
		out[r.Partition]++
	}
	return out
}

// ---------------------------------------------------------------------------
// Metrics

// metrics scrapes GET /metrics into name (with any labels) → value.
func (b *broker) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + b.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics: malformed line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: malformed value in %q: %v", line, err)
		}
		out[strings.TrimSpace(line[:i])] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return out
}

// metric returns one metric, failing if it is missing.
func metric(t testing.TB, m map[string]float64, name string) float64 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Fatalf("metric %s missing from /metrics (have %v)", name, names)
	}
	return v
}

// ---------------------------------------------------------------------------
// Polling

// eventually calls check until it returns nil or timeout passes, then
// fails with check's last error. The pause between calls is a poll
// interval, not a synchronisation.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Raw record batches and produce requests

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offsets of RecordBatch fields (magic v2).
const (
	batchLengthAt     = 8
	batchMagicAt      = 16
	batchCRCAt        = 17
	batchAttributesAt = 21
	batchNumRecordsAt = 57
	batchRecordsAt    = 61
)

// rawBatch describes a magic v2 record batch to encode by hand.
type rawBatch struct {
	producerID int64 // -1 for none
	epoch      int16
	sequence   int32
	timestamp  int64 // first timestamp; record i gets timestamp+i
	values     [][]byte
}

// plainBatch is a batch of values without a producer ID.
func plainBatch(values ...string) rawBatch {
	b := rawBatch{producerID: -1, epoch: -1, sequence: -1, timestamp: time.Now().UnixMilli()}
	for _, v := range values {
		b.values = append(b.values, []byte(v))
	}
	return b
}

// encode returns the batch with a correct length and CRC.
func (rb rawBatch) encode() []byte {
	var records []byte
	for i, v := range rb.values {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte("k" + strconv.Itoa(i)),
			Value:            v,
			Headers:          []kmsg.Header{{Key: "raw", Value: []byte("yes")}},
		}
		body := r.AppendTo(nil)
		// AppendTo wrote a one-byte zero length first; prefix the real one.
		r.Length = int32(len(body) - 1)
		records = r.AppendTo(records)
	}
	n := int32(len(rb.values))
	batch := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      n - 1,
		FirstTimestamp:       rb.timestamp,
		MaxTimestamp:         rb.timestamp + int64(n) - 1,
		ProducerID:           rb.producerID,
		ProducerEpoch:        rb.epoch,
		FirstSequence:        rb.sequence,
		NumRecords:           n,
		Records:              records,
	}
	buf := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(buf[batchLengthAt:], uint32(len(buf)-12))
	fixCRC(buf)
	return buf
}

// fixCRC recomputes a batch's CRC over attributes to the end.
func fixCRC(buf []byte) {
	binary.BigEndian.PutUint32(buf[batchCRCAt:], crc32.Checksum(buf[batchAttributesAt:], castagnoli))
}

// rawProduce sends one produce request (acks=all) carrying records for
// topic's partition and returns that partition's response.
func rawProduce(t testing.TB, cl *kgo.Client, topic string, id [16]byte, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, requestTimeout), cl)
	if err != nil {
		t.Fatalf("produce request: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics, want 1 with 1 partition: %+v", len(resp.Topics), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// errName names a Kafka error code.
func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.Error()
	}
	return strconv.Itoa(int(code))
}

// rawFetch fetches one partition from offset and returns its response,
// decoding nothing.
func rawFetch(t testing.TB, cl *kgo.Client, topic string, id [16]byte, partition int32, offset int64, maxWait time.Duration) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 10 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, requestTimeout+maxWait), cl)
	if err != nil {
		t.Fatalf("fetch request: %v", err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch response error %s", errName(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// batchesOf splits fetched record bytes into batches, ignoring a trailing
// partial batch as Kafka clients do.
func batchesOf(t testing.TB, data []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(data) >= 12 {
		n := int(int32(binary.BigEndian.Uint32(data[batchLengthAt:]))) + 12
		if n > len(data) {
			break
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(data[:n]); err != nil {
			t.Fatalf("decoding fetched batch: %v", err)
		}
		out = append(out, b)
		data = data[n:]
	}
	return out
}
