package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyMode is the first argument that selects the flush-policy benchmark:
// the broker alone, under ASYNC_FLUSH and then SYNC_FLUSH, driven by 1, 8
// and 64 concurrent acks=all producers with no linger, measuring throughput
// and the latency of each record's acknowledgement.
const latencyMode = "latency"

// Limits of the latency mode's set-up steps.
const (
	firstRecordTimeout = 30 * time.Second // each producer's first, unmeasured record
	fsyncReadyTimeout  = 10 * time.Second // perf attaching to the broker
)

// latencyConfig is one latency run's settings.
type latencyConfig struct {
	Flush       []string // flush.disk.type values, in the order each cell runs them
	Producers   []int    // concurrent producers (clients) per cell
	Partitions  int
	Duration    time.Duration // measured part of each cell
	Warmup      time.Duration // unmeasured start of each cell
	RecordSize  int
	MaxBuffered int    // kgo.MaxBufferedRecords per producer
	Fsyncs      string // auto, perf or off
	JSON        bool
	base        *config // broker binary and arguments, timeouts, client log
}

func latencyMain(args []string, stdout, stderr io.Writer) int {
	lc, err := parseLatencyFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench latency: "+err.Error())
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	rep, err := runLatency(ctx, lc)
	if rep != nil {
		if lc.JSON {
			err = errors.Join(err, rep.writeJSON(stdout))
		} else {
			rep.writeMarkdown(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench latency: "+err.Error())
		return 1
	}
	return 0
}

func parseLatencyFlags(args []string, stderr io.Writer) (*latencyConfig, error) {
	fs := flag.NewFlagSet("bench latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		flush       = fs.String("flush", "ASYNC_FLUSH,SYNC_FLUSH", "comma-separated flush.disk.type values; each producer count runs them one after the other")
		producers   = fs.String("producers", "1,8,64", "comma-separated counts of concurrent producers, each its own client")
		partitions  = fs.Int("partitions", 8, "partitions of the topic")
		duration    = fs.Duration("duration", 7*time.Second, "measured time of each cell (flush type x producer count)")
		warmup      = fs.Duration("warmup", time.Second, "unmeasured production before each cell's measured time")
		recordSize  = fs.String("record-size", "1KiB", "bytes per record value")
		maxBuffered = fs.Int("max-buffered", 32, "records each producer may have unacknowledged (kgo.MaxBufferedRecords); Produce blocks beyond")
		fsyncs      = fs.String("fsyncs", "auto", "count the broker's fsync and fdatasync calls with perf: auto (if perf works), perf (required), off")
		brokerBin   = fs.String("broker-bin", "", "broker binary to run; empty builds ./cmd/broker into a temp dir")
		jsonOut     = fs.Bool("json", false, "print results as JSON instead of a Markdown table")
		timeout     = fs.Duration("timeout", 2*time.Minute, "time limit for starting a broker and creating the topic, and for the final flush of each cell")
		stopTimeout = fs.Duration("stop-timeout", 30*time.Second, "how long to wait for the broker to exit after SIGTERM before killing it")
		clientLog   = fs.String("client-log", "none", "franz-go client log level, to stderr: none, error, warn, info, debug")
		brokerArgs  stringList
	)
	fs.Var(&brokerArgs, "broker-arg", "extra argument for the broker binary, e.g. --broker-arg=--flush.interval.ms=100 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench latency [flags]\n\nAck latency and throughput of acks=all producers under each flush.disk.type; see docs/bench.md.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	lc := &latencyConfig{
		Partitions:  *partitions,
		Duration:    *duration,
		Warmup:      *warmup,
		MaxBuffered: *maxBuffered,
		Fsyncs:      strings.ToLower(*fsyncs),
		JSON:        *jsonOut,
		base: &config{
			BrokerBin:   *brokerBin,
			BrokerArgs:  brokerArgs,
			Timeout:     *timeout,
			StopTimeout: *stopTimeout,
			Log:         stderr,
		},
	}
	seen := map[string]bool{}
	for _, f := range splitList(*flush) {
		f = strings.ToUpper(f)
		if f != "ASYNC_FLUSH" && f != "SYNC_FLUSH" {
			return nil, fmt.Errorf("--flush: unknown flush.disk.type %q (want ASYNC_FLUSH or SYNC_FLUSH)", f)
		}
		if !seen[f] {
			seen[f] = true
			lc.Flush = append(lc.Flush, f)
		}
	}
	if len(lc.Flush) == 0 {
		return nil, errors.New("--flush: no flush types")
	}
	for _, p := range splitList(*producers) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("--producers: bad producer count %q", p)
		}
		lc.Producers = append(lc.Producers, n)
	}
	if len(lc.Producers) == 0 {
		return nil, errors.New("--producers: no producer counts")
	}
	if lc.Partitions < 1 {
		return nil, fmt.Errorf("--partitions: %d is not a partition count", lc.Partitions)
	}
	if lc.Duration <= 0 || lc.Warmup < 0 {
		return nil, errors.New("--duration must be positive and --warmup not negative")
	}
	rs, err := parseSize(*recordSize)
	if err != nil {
		return nil, fmt.Errorf("--record-size: %w", err)
	}
	if rs < 1 || rs > 512<<10 {
		return nil, fmt.Errorf("--record-size: %d bytes is outside 1B..512KiB", rs)
	}
	lc.RecordSize = int(rs)
	if lc.MaxBuffered < 1 {
		return nil, fmt.Errorf("--max-buffered: %d is not a record count", lc.MaxBuffered)
	}
	switch lc.Fsyncs {
	case "auto", "perf", "off":
	default:
		return nil, fmt.Errorf("--fsyncs: unknown value %q (want auto, perf or off)", *fsyncs)
	}
	if lc.base.ClientLog, err = parseClientLog(*clientLog); err != nil {
		return nil, fmt.Errorf("--client-log: %w", err)
	}
	if lc.base.Timeout <= 0 || lc.base.StopTimeout <= 0 {
		return nil, errors.New("--timeout and --stop-timeout must be positive")
	}
	return lc, nil
}

// latencyReport is a whole latency run; it is also the --json output.
type latencyReport struct {
	RecordSize  int             `json:"record_size"`
	Partitions  int             `json:"partitions"`
	MaxBuffered int             `json:"max_buffered_records_per_producer"`
	Duration    string          `json:"duration"`
	Warmup      string          `json:"warmup"`
	BrokerArgs  []string        `json:"broker_args,omitempty"`
	GoVersion   string          `json:"go_version"`
	Platform    string          `json:"platform"`
	CPUs        int             `json:"cpus"`
	Started     time.Time       `json:"started"`
	Results     []latencyResult `json:"results"`
	Ratios      []latencyRatio  `json:"ratios,omitempty"`
}

// latencyResult is one cell: a flush type and a producer count.
type latencyResult struct {
	Flush     string `json:"flush"`
	Producers int    `json:"producers"`

	// Acknowledgements received during the measured time, and the rates
	// they make.
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_s"`
	MBps          float64 `json:"mb_per_s"`

	// Latency, in milliseconds, from the Produce call to the promise, of
	// the records whose Produce call was in the measured time.
	Samples int     `json:"latency_samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	P999ms  float64 `json:"p999_ms"`
	MaxMs   float64 `json:"max_ms"`
	MeanMs  float64 `json:"mean_ms"`

	// fsync and fdatasync calls of the broker process, counted by perf
	// from just before the warm-up to the last acknowledgement; nil when
	// not counted. AckedWhileCounted is every acknowledgement in that span.
	Fsyncs            *int64  `json:"fsyncs,omitempty"`
	FsyncSeconds      float64 `json:"fsync_count_seconds,omitempty"`
	AckedWhileCounted int64   `json:"acked_while_counted,omitempty"`
	FsyncNote         string  `json:"fsync_note,omitempty"`

	TargetCPUSeconds float64 `json:"target_cpu_seconds"` // the broker's, over the measured time

	Error     string `json:"error,omitempty"`
	StopError string `json:"stop_error,omitempty"`
}

// latencyRatio compares SYNC_FLUSH with ASYNC_FLUSH at one producer count:
// each field is SYNC's figure divided by ASYNC's, nil where ASYNC's is 0.
type latencyRatio struct {
	Producers     int      `json:"producers"`
	RecordsPerSec *float64 `json:"records_per_s"`
	P50           *float64 `json:"p50"`
	P99           *float64 `json:"p99"`
}

// runLatency runs every cell, alternating the flush types within each
// producer count so that the cells a ratio compares run back to back.
func runLatency(ctx context.Context, lc *latencyConfig) (*latencyReport, error) {
	work, err := os.MkdirTemp("", "rocketkafka-bench-latency-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	log := lc.base.Log
	brokerBin := lc.base.BrokerBin
	if brokerBin == "" {
		bctx, cancel := context.WithTimeout(ctx, lc.base.Timeout)
		brokerBin, err = buildBroker(bctx, work, log)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	useFsyncs := lc.Fsyncs
	if useFsyncs == "auto" {
		if err := perfUsable(); err != nil {
			fmt.Fprintf(log, "not counting fsyncs: %v\n", err)
			useFsyncs = "off"
		} else {
			useFsyncs = "perf"
		}
	}

	rep := &latencyReport{
		RecordSize:  lc.RecordSize,
		Partitions:  lc.Partitions,
		MaxBuffered: lc.MaxBuffered,
		Duration:    lc.Duration.String(),
		Warmup:      lc.Warmup.String(),
		BrokerArgs:  lc.base.BrokerArgs,
		GoVersion:   runtime.Version(),
		Platform:    runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:        runtime.NumCPU(),
		Started:     time.Now().UTC().Truncate(time.Second),
	}
	pool := newValuePool(lc.RecordSize)
	var errs []error
	for _, producers := range lc.Producers {
		for _, flush := range lc.Flush {
			res := runLatencyCell(ctx, lc, brokerBin, work, flush, producers, pool, useFsyncs == "perf")
			rep.Results = append(rep.Results, res)
			if res.Error != "" {
				errs = append(errs, fmt.Errorf("%s with %d producers: %s", flush, producers, res.Error))
			}
			if ctx.Err() != nil {
				rep.computeRatios()
				return rep, errors.Join(append(errs, ctx.Err())...)
			}
		}
	}
	rep.computeRatios()
	return rep, errors.Join(errs...)
}

// runLatencyCell starts a fresh broker with flush.disk.type=flush, creates
// the topic, runs the producers and stops the broker.
func runLatencyCell(ctx context.Context, lc *latencyConfig, brokerBin, work, flush string, producers int, pool *valuePool, countFsyncs bool) (res latencyResult) {
	res = latencyResult{Flush: flush, Producers: producers}
	log := lc.base.Log
	label := fmt.Sprintf("[%s, %d producers]", flush, producers)
	fail := func(err error) latencyResult {
		res.Error = err.Error()
		fmt.Fprintf(log, "%s FAILED: %v\n", label, err)
		return res
	}
	dir, err := os.MkdirTemp(work, fmt.Sprintf("%s-%d-", strings.ToLower(flush), producers))
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		return fail(err)
	}

	fmt.Fprintf(log, "%s starting\n", label)
	sctx, cancel := context.WithTimeout(ctx, lc.base.Timeout)
	defer cancel()
	args := append([]string{"--flush.disk.type=" + flush}, lc.base.BrokerArgs...)
	t, err := startBroker(sctx, brokerBin, args, dataDir, filepath.Join(dir, "broker.log"))
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := t.stop(lc.base.StopTimeout); err != nil {
			res.StopError = err.Error()
			fmt.Fprintf(log, "%s WARNING: %v\n", label, err)
		}
	}()
	topic := "latency"
	if err := createTopic(sctx, lc.base, t.addr, topic, lc.Partitions); err != nil {
		return fail(err)
	}

	// The clients connect, learn the topic and get their producer IDs
	// (one synchronous record each) before anything is measured.
	clients := make([]*kgo.Client, producers)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i := range clients {
		cl, err := kgo.NewClient(append(clientOpts(lc.base, fmt.Sprintf("producer-%d", i), t.addr),
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // the default, as is idempotence
			kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()), // the values are incompressible
			kgo.MaxBufferedRecords(lc.MaxBuffered),
		)...)
		if err != nil {
			return fail(err)
		}
		clients[i] = cl
	}
	var ready sync.WaitGroup
	readyErrs := make([]error, producers)
	for i, cl := range clients {
		ready.Go(func() {
			pctx, cancel := context.WithTimeout(sctx, firstRecordTimeout)
			defer cancel()
			readyErrs[i] = cl.ProduceSync(pctx, &kgo.Record{Value: pool.value(int64(i))}).FirstErr()
		})
	}
	ready.Wait()
	if err := errors.Join(readyErrs...); err != nil {
		return fail(fmt.Errorf("first record of each producer: %w", err))
	}
	cancel()

	var fc *fsyncCounter
	if countFsyncs {
		if fc, err = startFsyncCounter(ctx, t.cmd.Process.Pid, filepath.Join(dir, "perf.csv")); err != nil {
			res.FsyncNote = err.Error()
			fmt.Fprintf(log, "%s not counting fsyncs: %v\n", label, err)
			fc = nil
		}
	}

	// Every producer runs the same closed loop: Produce (which blocks
	// while MaxBuffered records are unacknowledged) until the end of the
	// measured time, then Flush.
	start := time.Now()
	measureFrom := start.Add(lc.Warmup)
	measureTo := measureFrom.Add(lc.Duration)
	var (
		inWindow atomic.Int64 // acks received in [measureFrom, measureTo)
		total    atomic.Int64 // every ack of the loop
		cpuFrom  atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	cpuFrom.Store(-1)
	pctx, cancelProduce := context.WithCancel(ctx)
	defer cancelProduce()
	lats := make([][]time.Duration, producers)
	latMu := make([]sync.Mutex, producers)
	go func() {
		// The broker's CPU time over the measured time.
		select {
		case <-time.After(time.Until(measureFrom)):
			if c, err := t.cpu(); err == nil {
				cpuFrom.Store(int64(c))
			}
		case <-pctx.Done():
		}
	}()
	for i, cl := range clients {
		wg.Go(func() {
			seq := int64(i) * 1_000_003
			for time.Now().Before(measureTo) && pctx.Err() == nil {
				t0 := time.Now()
				seq++
				cl.Produce(pctx, &kgo.Record{Value: pool.value(seq)}, func(_ *kgo.Record, err error) {
					now := time.Now()
					if err != nil {
						errOnce.Do(func() {
							firstErr = err
							cancelProduce()
						})
						return
					}
					total.Add(1)
					if !now.Before(measureFrom) && now.Before(measureTo) {
						inWindow.Add(1)
					}
					if !t0.Before(measureFrom) {
						latMu[i].Lock()
						lats[i] = append(lats[i], now.Sub(t0))
						latMu[i].Unlock()
					}
				})
			}
			fctx, cancel := context.WithTimeout(pctx, lc.base.Timeout)
			defer cancel()
			if err := cl.Flush(fctx); err != nil {
				errOnce.Do(func() {
					firstErr = fmt.Errorf("flushing: %w", err)
					cancelProduce()
				})
			}
		})
	}
	wg.Wait()
	cpuTo, cpuErr := t.cpu()
	if fc != nil {
		n, span, err := fc.stop()
		if err != nil {
			res.FsyncNote = err.Error()
			fmt.Fprintf(log, "%s fsync count failed: %v\n", label, err)
		} else {
			res.Fsyncs, res.FsyncSeconds, res.AckedWhileCounted = &n, span.Seconds(), total.Load()
		}
	}
	errOnce.Do(func() {}) // firstErr is settled from here on
	if firstErr != nil {
		return fail(fmt.Errorf("producing: %w", firstErr))
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}

	res.Records = inWindow.Load()
	res.RecordsPerSec = float64(res.Records) / lc.Duration.Seconds()
	res.MBps = res.RecordsPerSec * float64(lc.RecordSize) / mb
	if from := cpuFrom.Load(); from >= 0 && cpuErr == nil {
		res.TargetCPUSeconds = (cpuTo - time.Duration(from)).Seconds()
	}
	var all []time.Duration
	for i := range lats {
		all = append(all, lats[i]...)
	}
	slices.Sort(all)
	res.Samples = len(all)
	if len(all) > 0 {
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		res.P50ms = ms(percentile(all, 0.50))
		res.P99ms = ms(percentile(all, 0.99))
		res.P999ms = ms(percentile(all, 0.999))
		res.MaxMs = ms(all[len(all)-1])
		res.MeanMs = ms(sum / time.Duration(len(all)))
	}
	fsyncs := "fsyncs not counted"
	if res.Fsyncs != nil {
		fsyncs = fmt.Sprintf("%d fsyncs in %.1fs", *res.Fsyncs, res.FsyncSeconds)
	}
	fmt.Fprintf(log, "%s %.0f records/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, %s, broker CPU %.2fs\n",
		label, res.RecordsPerSec, res.MBps, res.P50ms, res.P99ms, fsyncs, res.TargetCPUSeconds)
	return res
}

// percentile is the nearest-rank percentile q (0..1] of sorted, which must
// not be empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (rep *latencyReport) computeRatios() {
	rep.Ratios = nil
	find := func(flush string, producers int) *latencyResult {
		for i := range rep.Results {
			r := &rep.Results[i]
			if r.Flush == flush && r.Producers == producers && r.Error == "" && r.Samples > 0 {
				return r
			}
		}
		return nil
	}
	seen := map[int]bool{}
	for _, r := range rep.Results {
		if seen[r.Producers] {
			continue
		}
		seen[r.Producers] = true
		s, a := find("SYNC_FLUSH", r.Producers), find("ASYNC_FLUSH", r.Producers)
		if s == nil || a == nil {
			continue
		}
		rep.Ratios = append(rep.Ratios, latencyRatio{
			Producers:     r.Producers,
			RecordsPerSec: div(s.RecordsPerSec, a.RecordsPerSec),
			P50:           div(s.P50ms, a.P50ms),
			P99:           div(s.P99ms, a.P99ms),
		})
	}
}

func (rep *latencyReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *latencyReport) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\nacks=all idempotent producers, linger 0, %s records, at most %d unacknowledged per producer; topic of %d partitions; %s warm-up, then %s measured per cell; %d CPUs, %s %s.\n",
		formatSize(int64(rep.RecordSize)), rep.MaxBuffered, rep.Partitions, rep.Warmup, rep.Duration, rep.CPUs, rep.GoVersion, rep.Platform)
	if len(rep.BrokerArgs) > 0 {
		fmt.Fprintf(w, "Broker arguments: %s.\n", strings.Join(rep.BrokerArgs, " "))
	}
	fmt.Fprintln(w, "MB = 2^20 bytes of record values. Latency: from the Produce call to its acknowledgement. fsyncs: the broker's fsync+fdatasync calls (perf) from the warm-up to the last ack.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | producers | records/s | MB/s | p50 ms | p99 ms | fsyncs | records/fsync |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, r := range rep.Results {
		cells := []string{"n/a", "n/a", "n/a", "n/a", "n/a", "n/a"}
		if r.Error == "" && r.Samples > 0 {
			cells[0] = fmt.Sprintf("%.0f", r.RecordsPerSec)
			cells[1] = fmt.Sprintf("%.1f", r.MBps)
			cells[2] = fmt.Sprintf("%.2f", r.P50ms)
			cells[3] = fmt.Sprintf("%.2f", r.P99ms)
		}
		if r.Fsyncs != nil {
			cells[4] = strconv.FormatInt(*r.Fsyncs, 10)
			if *r.Fsyncs > 0 {
				cells[5] = fmt.Sprintf("%.1f", float64(r.AckedWhileCounted)/float64(*r.Fsyncs))
			}
		}
		mark := ""
		for _, e := range []string{r.Error, r.StopError} {
			if e != "" {
				notes = append(notes, fmt.Sprintf("%s, %d producers: %s", r.Flush, r.Producers, firstLine(e)))
				mark = " (!)"
			}
		}
		fmt.Fprintf(w, "| %s%s | %d | %s |\n", r.Flush, mark, r.Producers, strings.Join(cells, " | "))
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "SYNC_FLUSH/ASYNC_FLUSH, same run (records/s below 1 and latency above 1: what waiting for the fsync costs):")
		fmt.Fprintln(w)
		for _, q := range rep.Ratios {
			fmt.Fprintf(w, "- %d producers: records/s %s, p50 %s, p99 %s\n", q.Producers, fmtRatio(q.RecordsPerSec), fmtRatio(q.P50), fmtRatio(q.P99))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "(!) %s\n", n)
		}
	}
}
