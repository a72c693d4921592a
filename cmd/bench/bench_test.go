package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the bench binary when the
// benchmark re-executes itself (os.Executable) in kfake-serve mode.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == kfakeServeMode {
		os.Exit(kfakeServe(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestEndToEnd runs the whole benchmark, building and running the broker
// and kfake, at a tiny volume, so that CI catches a broken bench command.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and drives real broker and kfake processes")
	}
	var log bytes.Buffer
	cfg, err := parseFlags([]string{"--volume=2MiB", "--partitions=1,3", "--timeout=2m"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}

	if len(rep.Results) != 4 {
		t.Fatalf("got %d results, want 4 (2 targets x 2 partition counts)", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.StopError != "" {
			t.Errorf("%s, %d partitions: %s", r.Target, r.Partitions, r.StopError)
		}
		if r.Bytes != 2<<20 || r.Records != 2048 {
			t.Errorf("%s, %d partitions: %d bytes in %d records, want 2MiB in 2048", r.Target, r.Partitions, r.Bytes, r.Records)
		}
		if !r.produced || !r.consumed || r.ProduceMBps <= 0 || r.ConsumeMBps <= 0 {
			t.Errorf("%s, %d partitions: missing throughput: %+v", r.Target, r.Partitions, r)
		}
	}
	if len(rep.Ratios) != 2 {
		t.Errorf("got %d ratio lines, want 2", len(rep.Ratios))
	}

	var md bytes.Buffer
	rep.writeMarkdown(&md)
	t.Logf("table:\n%s", md.String())
	for _, want := range []string{
		"| target | partitions | produce MB/s | consume MB/s | CPU s/GB produce | CPU s/GB consume |",
		"| broker | 1 |", "| broker | 3 |", "| kfake | 1 |", "| kfake | 3 |",
		"- 1 partitions: produce MB/s", "- 3 partitions: produce MB/s",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 4 {
		t.Errorf("JSON does not round-trip (%v): %s", err, js.String())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1024": 1024, "16B": 16, "1KiB": 1 << 10, "16MiB": 16 << 20, "512MiB": 512 << 20,
		"2GiB": 2 << 30, "3g": 3 << 30, " 7 mib ": 7 << 20,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12MB", "1.5GiB", "-1KiB", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	var log bytes.Buffer
	cfg, err := parseFlags([]string{"--targets=kfake,kfake", "--partitions=1, 10", "--volume=16MiB",
		"--broker-arg=--a=1", "--broker-arg", "--b=2"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Targets, ",") != "kfake" || len(cfg.Partitions) != 2 || cfg.Partitions[1] != 10 ||
		cfg.Volume != 16<<20 || cfg.RecordSize != 1024 || strings.Join(cfg.BrokerArgs, " ") != "--a=1 --b=2" {
		t.Errorf("parsed %+v", cfg)
	}
	for _, args := range [][]string{
		{"--targets=kafka"}, {"--partitions=0"}, {"--volume=100B"}, {"--compression=brotli"}, {"extra"},
	} {
		if _, err := parseFlags(args, &log); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}
