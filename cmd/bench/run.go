package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"
)

// run benchmarks every partition count against every target and returns
// the report, which holds a row for each run, failed ones included. The
// targets alternate within each partition count so that the runs a ratio
// compares are close together in time.
func run(ctx context.Context, cfg *config) (*report, error) {
	work, err := os.MkdirTemp("", "rocketkafka-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	brokerBin := cfg.BrokerBin
	if brokerBin == "" && slices.Contains(cfg.Targets, "broker") {
		bctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		brokerBin, err = buildBroker(bctx, work, cfg.Log)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	records := cfg.Volume / int64(cfg.RecordSize)
	rep := &report{
		VolumeBytes: records * int64(cfg.RecordSize),
		RecordSize:  cfg.RecordSize,
		Records:     records,
		Linger:      cfg.Linger.String(),
		Compression: cfg.Compression,
		GoVersion:   runtime.Version(),
		Platform:    runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:        runtime.NumCPU(),
		Started:     time.Now().UTC().Truncate(time.Second),
	}
	if rep.VolumeBytes != cfg.Volume {
		fmt.Fprintf(cfg.Log, "volume rounded down to %d whole records: %d bytes\n", records, rep.VolumeBytes)
	}
	pool := newValuePool(cfg.RecordSize)

	var errs []error
	for _, partitions := range cfg.Partitions {
		for _, name := range cfg.Targets {
			if cfg.WarmMemory {
				warmMemory(min(2*rep.VolumeBytes, maxWarmBytes))
			}
			res := runOne(ctx, cfg, name, brokerBin, work, partitions, pool, records)
			rep.Results = append(rep.Results, res)
			if res.Error != "" {
				errs = append(errs, fmt.Errorf("%s with %d partitions: %s", name, partitions, res.Error))
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

// maxWarmBytes bounds warmMemory.
const maxWarmBytes = 4 << 30

// warmMemory touches n bytes of fresh memory and gives it back to the
// system. On a virtual machine the first touch of a guest page costs the
// hypervisor's work; without this, whichever target runs first on memory
// the machine has not used before pays it (seen here as twice the broker's
// produce CPU in the first of identical runs), and the order of targets
// biases the comparison.
func warmMemory(n int64) {
	const chunk = 64 << 20
	var held [][]byte
	for ; n > 0; n -= chunk {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		held = append(held, b)
	}
	runtime.KeepAlive(held) // all of it touched at once, then freed
	debug.FreeOSMemory()
}

// runOne starts a fresh target, creates the topic, produces, consumes and
// stops the target. Failures land in the result's Error (and StopError).
func runOne(ctx context.Context, cfg *config, name, brokerBin, work string, partitions int, pool *valuePool, records int64) (res result) {
	res = result{Target: name, Partitions: partitions, Bytes: records * int64(cfg.RecordSize), Records: records}
	label := fmt.Sprintf("[%s, %d partitions]", name, partitions)
	fail := func(err error) result {
		res.Error = err.Error()
		fmt.Fprintf(cfg.Log, "%s FAILED: %v\n", label, err)
		return res
	}
	dir, err := os.MkdirTemp(work, fmt.Sprintf("%s-p%d-", name, partitions))
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(cfg.Log, "%s starting\n", label)
	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var t *target
	logPath := filepath.Join(dir, name+".log")
	switch name {
	case "broker":
		dataDir := filepath.Join(dir, "data")
		if err := os.Mkdir(dataDir, 0o755); err != nil {
			return fail(err)
		}
		t, err = startBroker(sctx, brokerBin, cfg.BrokerArgs, dataDir, logPath)
	case "kfake":
		t, err = startKfake(sctx, logPath)
	default:
		err = fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return fail(err)
	}
	defer func() {
		if rss, err := procPeakRSS(t.cmd.Process.Pid); err == nil {
			res.TargetPeakRSSBytes = rss
			fmt.Fprintf(cfg.Log, "%s peak RSS %.0f MiB\n", label, float64(rss)/(1<<20))
		}
		if err := t.stop(cfg.StopTimeout); err != nil {
			res.StopError = err.Error()
			fmt.Fprintf(cfg.Log, "%s WARNING: %v\n", label, err)
		}
	}()
	m := meter{t: t}
	if _, err := m.sample(); err != nil {
		return fail(err)
	}

	topic := fmt.Sprintf("bench-%d", partitions)
	if err := createTopic(sctx, cfg, t.addr, topic, partitions); err != nil {
		return fail(err)
	}
	cancel()

	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	prod, err := produce(pctx, cfg, t.addr, topic, pool, records, m)
	if err != nil {
		return fail(err)
	}
	res.setProduce(prod)
	fmt.Fprintf(cfg.Log, "%s produced %s in %.2fs: %.1f MB/s, target CPU %.2fs, client CPU %.2fs\n",
		label, formatSize(res.Bytes), prod.Wall.Seconds(), res.ProduceMBps, prod.TargetCPU.Seconds(), prod.ClientCPU.Seconds())
	cancel()

	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cons, err := consume(cctx, cfg, t.addr, topic, records, res.Bytes, m)
	if err != nil {
		return fail(err)
	}
	res.setConsume(cons)
	fmt.Fprintf(cfg.Log, "%s consumed %s in %.2fs: %.1f MB/s, target CPU %.2fs, client CPU %.2fs\n",
		label, formatSize(res.Bytes), cons.Wall.Seconds(), res.ConsumeMBps, cons.TargetCPU.Seconds(), cons.ClientCPU.Seconds())
	return res
}
