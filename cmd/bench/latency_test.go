package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLatencyEndToEnd runs the latency mode briefly, building and running
// the broker, so that CI catches a broken mode.
func TestLatencyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and drives real broker processes")
	}
	var log bytes.Buffer
	lc, err := parseLatencyFlags([]string{"--producers=1,3", "--duration=700ms", "--warmup=200ms", "--partitions=2", "--timeout=1m"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := runLatency(ctx, lc)
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("got %d results, want 4 (2 flush types x 2 producer counts)", len(rep.Results))
	}
	for i, r := range rep.Results {
		wantFlush := []string{"ASYNC_FLUSH", "SYNC_FLUSH"}[i%2]
		if r.Flush != wantFlush || r.Producers != []int{1, 3}[i/2] {
			t.Errorf("result %d is %s with %d producers, want %s with %d", i, r.Flush, r.Producers, wantFlush, []int{1, 3}[i/2])
		}
		if r.StopError != "" {
			t.Errorf("%s, %d producers: %s", r.Flush, r.Producers, r.StopError)
		}
		if r.Records <= 0 || r.RecordsPerSec <= 0 || r.Samples <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.MaxMs < r.P99ms {
			t.Errorf("%s, %d producers: implausible figures %+v", r.Flush, r.Producers, r)
		}
		if r.Fsyncs != nil && r.Flush == "SYNC_FLUSH" && *r.Fsyncs == 0 {
			t.Errorf("SYNC_FLUSH with %d producers: perf counted no fsync while %d records were acknowledged", r.Producers, r.AckedWhileCounted)
		}
	}
	if len(rep.Ratios) != 2 {
		t.Errorf("got %d ratio lines, want 2", len(rep.Ratios))
	}

	var md bytes.Buffer
	rep.writeMarkdown(&md)
	t.Logf("table:\n%s", md.String())
	for _, want := range []string{
		"| mode | producers | records/s | MB/s | p50 ms | p99 ms |",
		"| ASYNC_FLUSH | 1 |", "| SYNC_FLUSH | 1 |", "| ASYNC_FLUSH | 3 |", "| SYNC_FLUSH | 3 |",
		"- 1 producers: records/s", "- 3 producers: records/s",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back latencyReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 4 {
		t.Errorf("JSON does not round-trip (%v): %s", err, js.String())
	}
}

func TestLatencyParseFlags(t *testing.T) {
	var log bytes.Buffer
	lc, err := parseLatencyFlags(nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lc.Flush, ",") != "ASYNC_FLUSH,SYNC_FLUSH" || len(lc.Producers) != 3 || lc.Producers[2] != 64 ||
		lc.RecordSize != 1024 || lc.Fsyncs != "auto" || lc.Duration <= 0 {
		t.Errorf("defaults: %+v", lc)
	}
	lc, err = parseLatencyFlags([]string{"--flush=sync_flush,SYNC_FLUSH", "--producers=2", "--record-size=100B",
		"--broker-arg=--flush.interval.ms=100", "--fsyncs=off", "--client-log=warn"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lc.Flush, ",") != "SYNC_FLUSH" || lc.Producers[0] != 2 || lc.RecordSize != 100 ||
		strings.Join(lc.base.BrokerArgs, " ") != "--flush.interval.ms=100" || lc.Fsyncs != "off" {
		t.Errorf("parsed %+v", lc)
	}
	for _, args := range [][]string{
		{"--flush=NEVER"}, {"--producers=0"}, {"--producers="}, {"--partitions=0"}, {"--duration=0s"},
		{"--record-size=1GiB"}, {"--max-buffered=0"}, {"--fsyncs=strace"}, {"--client-log=loud"}, {"extra"},
	} {
		if _, err := parseLatencyFlags(args, &log); err == nil {
			t.Errorf("parseLatencyFlags(%q) succeeded, want an error", args)
		}
	}
	// The throughput benchmark's flags are unchanged by the new mode.
	if _, err := parseFlags([]string{"latency"}, &log); err == nil {
		t.Error(`parseFlags("latency") succeeded: the mode is chosen by main, not by the throughput benchmark's flags`)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 0.999: 100 * time.Millisecond, 0.01: time.Millisecond} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", q, got, want)
		}
	}
	if got := percentile(d[:1], 0.99); got != time.Millisecond {
		t.Errorf("percentile of one sample = %v", got)
	}
}
