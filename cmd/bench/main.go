// Command bench is the end-to-end throughput benchmark: it runs the broker
// and kfake (franz-go's in-memory fake Kafka) side by side in one run, each
// as its own process, produces a fixed volume of incompressible records to
// a topic of N partitions, consumes it all back, and reports throughput and
// the target process's CPU seconds per GiB moved.
//
//	go run ./cmd/bench                                   # 512MiB, 1/100/1000 partitions, both targets
//	go run ./cmd/bench --volume=16MiB --partitions=1,10  # smoke run, a few seconds
//	go run ./cmd/bench --targets=kfake --json
//
// With latency as its first argument it is instead the flush-policy
// benchmark: the broker alone under ASYNC_FLUSH and SYNC_FLUSH, with 1, 8
// and 64 concurrent acks=all producers, reporting throughput and ack
// latency percentiles (latency.go):
//
//	go run ./cmd/bench latency
//	go run ./cmd/bench latency --producers=1,4 --duration=3s
//
// See docs/bench.md for what the figures mean.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakeServeMode is the hidden first argument that turns this binary into a
// kfake server; the benchmark re-executes itself this way so kfake's CPU time
// can be measured apart from the clients'.
const kfakeServeMode = "kfake-serve"

func main() {
	if len(os.Args) > 1 && os.Args[1] == kfakeServeMode {
		os.Exit(kfakeServe(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == latencyMode {
		os.Exit(latencyMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// config is one benchmark run's settings, as parsed from the command line.
type config struct {
	Targets     []string
	Partitions  []int
	Volume      int64 // bytes of record values produced, and consumed, per run
	RecordSize  int   // bytes per record value
	BrokerBin   string
	BrokerArgs  []string
	Linger      time.Duration
	Compression string
	JSON        bool
	Timeout     time.Duration // per phase
	ClientLog   kgo.LogLevel  // franz-go client logging, to Log
	StopTimeout time.Duration
	CPUProfile  string    // file for a CPU profile of the client side; empty for none
	WarmMemory  bool      // touch fresh memory before each run (warmMemory)
	Log         io.Writer // progress lines; never nil after parseFlags
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: "+err.Error())
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench: cpuprofile: "+err.Error())
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	rep, err := run(ctx, cfg)
	if rep != nil {
		if cfg.JSON {
			err = errors.Join(err, rep.writeJSON(stdout))
		} else {
			rep.writeMarkdown(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: "+err.Error())
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		targets     = fs.String("targets", "broker,kfake", "comma-separated targets to benchmark: broker, kfake")
		partitions  = fs.String("partitions", "1,100,1000", "comma-separated partition counts; each gets a fresh target process and topic")
		volume      = fs.String("volume", "512MiB", "bytes of record values to produce and then consume per run (B, KiB, MiB, GiB)")
		recordSize  = fs.String("record-size", "1KiB", "bytes per record value")
		brokerBin   = fs.String("broker-bin", "", "broker binary to run; empty builds ./cmd/broker into a temp dir")
		linger      = fs.Duration("linger", 5*time.Millisecond, "producer linger (kgo.ProducerLinger)")
		compression = fs.String("compression", "none", "producer batch compression: none, gzip, snappy, lz4, zstd")
		jsonOut     = fs.Bool("json", false, "print results as JSON instead of a Markdown table")
		timeout     = fs.Duration("timeout", 10*time.Minute, "time limit for each phase (start, produce, consume)")
		stopTimeout = fs.Duration("stop-timeout", 30*time.Second, "how long to wait for a target to exit after SIGTERM before killing it")
		clientLog   = fs.String("client-log", "none", "franz-go client log level, to stderr: none, error, warn, info, debug")
		cpuProfile  = fs.String("cpuprofile", "", "write a CPU profile of the client side (producer and consumer) to this file")
		warm        = fs.Bool("warm-memory", true, "before each run, touch and free twice the volume of memory (at most 4 GiB), so that no target pays a virtual machine's first touch of fresh memory")
		brokerArgs  stringList
	)
	fs.Var(&brokerArgs, "broker-arg", "extra argument for the broker binary, e.g. --broker-arg=--log.flush.interval.ms=1000 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench [flags]\n\nEnd-to-end produce/consume benchmark of the broker against kfake; see docs/bench.md.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := &config{
		BrokerBin:   *brokerBin,
		BrokerArgs:  brokerArgs,
		CPUProfile:  *cpuProfile,
		WarmMemory:  *warm,
		Linger:      *linger,
		Compression: *compression,
		JSON:        *jsonOut,
		Timeout:     *timeout,
		StopTimeout: *stopTimeout,
		Log:         stderr,
	}
	seen := map[string]bool{}
	for _, t := range splitList(*targets) {
		if t != "broker" && t != "kfake" {
			return nil, fmt.Errorf("--targets: unknown target %q (want broker or kfake)", t)
		}
		if !seen[t] {
			seen[t] = true
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("--targets: no targets")
	}
	for _, p := range splitList(*partitions) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--partitions: bad partition count %q", p)
		}
		cfg.Partitions = append(cfg.Partitions, n)
	}
	if len(cfg.Partitions) == 0 {
		return nil, errors.New("--partitions: no partition counts")
	}
	var err error
	if cfg.Volume, err = parseSize(*volume); err != nil {
		return nil, fmt.Errorf("--volume: %w", err)
	}
	rs, err := parseSize(*recordSize)
	if err != nil {
		return nil, fmt.Errorf("--record-size: %w", err)
	}
	if rs < 1 || rs > 512<<10 {
		return nil, fmt.Errorf("--record-size: %d bytes is outside 1B..512KiB", rs)
	}
	cfg.RecordSize = int(rs)
	if cfg.Volume < rs {
		return nil, fmt.Errorf("--volume: %d bytes is less than one record of %d bytes", cfg.Volume, rs)
	}
	if _, err := compressionCodec(cfg.Compression); err != nil {
		return nil, fmt.Errorf("--compression: %w", err)
	}
	if cfg.ClientLog, err = parseClientLog(*clientLog); err != nil {
		return nil, fmt.Errorf("--client-log: %w", err)
	}
	if cfg.Timeout <= 0 || cfg.StopTimeout <= 0 {
		return nil, errors.New("--timeout and --stop-timeout must be positive")
	}
	return cfg, nil
}

// signalContext is a context that ends on Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// parseClientLog parses a --client-log level.
func parseClientLog(s string) (kgo.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return kgo.LogLevelNone, nil
	case "error":
		return kgo.LogLevelError, nil
	case "warn":
		return kgo.LogLevelWarn, nil
	case "info":
		return kgo.LogLevelInfo, nil
	case "debug":
		return kgo.LogLevelDebug, nil
	}
	return kgo.LogLevelNone, fmt.Errorf("unknown level %q", s)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseSize parses a byte count with an optional binary unit suffix: B,
// KiB, MiB, GiB, TiB (K, M, G, T are accepted as shorthand for the same).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("bad size %q: unit must be B, KiB, MiB, GiB or TiB", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// formatSize renders n bytes with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown codec %q", name)
}
