package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Units: MB is 2^20 bytes and GB is 2^30 bytes, as with the --volume flag.
const (
	mb = 1 << 20
	gb = 1 << 30
)

// report is the whole run's results; it is also the --json output.
type report struct {
	VolumeBytes int64     `json:"volume_bytes"`
	RecordSize  int       `json:"record_size"`
	Records     int64     `json:"records"`
	Linger      string    `json:"linger"`
	Compression string    `json:"compression"`
	GoVersion   string    `json:"go_version"`
	Platform    string    `json:"platform"`
	CPUs        int       `json:"cpus"`
	Started     time.Time `json:"started"`
	Results     []result  `json:"results"`
	Ratios      []ratio   `json:"ratios,omitempty"`
}

// result is one target at one partition count. Seconds are wall or CPU
// seconds of the phase; "target" is the broker or kfake process, "client"
// this benchmark process, which runs the producer and consumer.
type result struct {
	Target     string `json:"target"`
	Partitions int    `json:"partitions"`
	Bytes      int64  `json:"bytes"`
	Records    int64  `json:"records"`

	ProduceSeconds          float64 `json:"produce_seconds"`
	ProduceMBps             float64 `json:"produce_mb_per_s"`
	ProduceTargetCPUSeconds float64 `json:"produce_target_cpu_seconds"`
	ProduceClientCPUSeconds float64 `json:"produce_client_cpu_seconds"`
	ProduceTargetCPUPerGB   float64 `json:"produce_target_cpu_s_per_gb"`
	ProduceClientCPUPerGB   float64 `json:"produce_client_cpu_s_per_gb"`

	ConsumeSeconds          float64 `json:"consume_seconds"`
	ConsumeMBps             float64 `json:"consume_mb_per_s"`
	ConsumeTargetCPUSeconds float64 `json:"consume_target_cpu_seconds"`
	ConsumeClientCPUSeconds float64 `json:"consume_client_cpu_seconds"`
	ConsumeTargetCPUPerGB   float64 `json:"consume_target_cpu_s_per_gb"`
	ConsumeClientCPUPerGB   float64 `json:"consume_client_cpu_s_per_gb"`

	TargetPeakRSSBytes int64 `json:"target_peak_rss_bytes,omitempty"` // VmHWM just before stopping

	Error     string `json:"error,omitempty"`      // the run failed; figures are partial
	StopError string `json:"stop_error,omitempty"` // the target did not shut down cleanly

	produced, consumed bool
}

func (r *result) setProduce(p phase) {
	gbs := float64(r.Bytes) / gb
	r.produced = true
	r.ProduceSeconds = p.Wall.Seconds()
	r.ProduceMBps = float64(r.Bytes) / mb / p.Wall.Seconds()
	r.ProduceTargetCPUSeconds = p.TargetCPU.Seconds()
	r.ProduceClientCPUSeconds = p.ClientCPU.Seconds()
	r.ProduceTargetCPUPerGB = p.TargetCPU.Seconds() / gbs
	r.ProduceClientCPUPerGB = p.ClientCPU.Seconds() / gbs
}

func (r *result) setConsume(p phase) {
	gbs := float64(r.Bytes) / gb
	r.consumed = true
	r.ConsumeSeconds = p.Wall.Seconds()
	r.ConsumeMBps = float64(r.Bytes) / mb / p.Wall.Seconds()
	r.ConsumeTargetCPUSeconds = p.TargetCPU.Seconds()
	r.ConsumeClientCPUSeconds = p.ClientCPU.Seconds()
	r.ConsumeTargetCPUPerGB = p.TargetCPU.Seconds() / gbs
	r.ConsumeClientCPUPerGB = p.ClientCPU.Seconds() / gbs
}

// ratio compares the broker with kfake at one partition count: each field
// is the broker's figure divided by kfake's, or null where kfake's is 0 (a
// CPU reading below the 10ms resolution).
type ratio struct {
	Partitions          int      `json:"partitions"`
	ProduceMBps         *float64 `json:"produce_mb_per_s"`
	ConsumeMBps         *float64 `json:"consume_mb_per_s"`
	ProduceTargetCPUPer *float64 `json:"produce_target_cpu_s_per_gb"`
	ConsumeTargetCPUPer *float64 `json:"consume_target_cpu_s_per_gb"`
}

func (rep *report) computeRatios() {
	rep.Ratios = nil
	find := func(target string, partitions int) *result {
		for i := range rep.Results {
			r := &rep.Results[i]
			if r.Target == target && r.Partitions == partitions && r.Error == "" && r.consumed {
				return r
			}
		}
		return nil
	}
	seen := map[int]bool{}
	for _, r := range rep.Results {
		if seen[r.Partitions] {
			continue
		}
		seen[r.Partitions] = true
		b, k := find("broker", r.Partitions), find("kfake", r.Partitions)
		if b == nil || k == nil {
			continue
		}
		rep.Ratios = append(rep.Ratios, ratio{
			Partitions:          r.Partitions,
			ProduceMBps:         div(b.ProduceMBps, k.ProduceMBps),
			ConsumeMBps:         div(b.ConsumeMBps, k.ConsumeMBps),
			ProduceTargetCPUPer: div(b.ProduceTargetCPUPerGB, k.ProduceTargetCPUPerGB),
			ConsumeTargetCPUPer: div(b.ConsumeTargetCPUPerGB, k.ConsumeTargetCPUPerGB),
		})
	}
}

// div is a/b, or nil when b is 0.
func div(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	q := a / b
	return &q
}

func fmtRatio(q *float64) string {
	if q == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", *q)
}

func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\n%s per run (%d records of %s), acks=all, linger %s, compression %s; %d CPUs, %s %s.\n",
		formatSize(rep.VolumeBytes), rep.Records, formatSize(int64(rep.RecordSize)), rep.Linger, rep.Compression,
		rep.CPUs, rep.GoVersion, rep.Platform)
	fmt.Fprintln(w, "MB = 2^20 bytes, GB = 2^30 bytes. CPU s/GB: the target process's CPU seconds (user+sys) per GB moved; client: this process's (producer or consumer).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | partitions | produce MB/s | consume MB/s | CPU s/GB produce | CPU s/GB consume | client CPU s/GB produce | client CPU s/GB consume |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, r := range rep.Results {
		cells := []string{"n/a", "n/a", "n/a", "n/a", "n/a", "n/a"}
		if r.produced {
			cells[0] = fmt.Sprintf("%.1f", r.ProduceMBps)
			cells[2] = fmt.Sprintf("%.2f", r.ProduceTargetCPUPerGB)
			cells[4] = fmt.Sprintf("%.2f", r.ProduceClientCPUPerGB)
		}
		if r.consumed {
			cells[1] = fmt.Sprintf("%.1f", r.ConsumeMBps)
			cells[3] = fmt.Sprintf("%.2f", r.ConsumeTargetCPUPerGB)
			cells[5] = fmt.Sprintf("%.2f", r.ConsumeClientCPUPerGB)
		}
		mark := ""
		for _, e := range []string{r.Error, r.StopError} {
			if e != "" {
				notes = append(notes, fmt.Sprintf("%s, %d partitions: %s", r.Target, r.Partitions, firstLine(e)))
				mark = " (!)"
			}
		}
		fmt.Fprintf(w, "| %s%s | %d | %s |\n", r.Target, mark, r.Partitions, strings.Join(cells, " | "))
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "broker/kfake ratios, same run (MB/s: above 1 is the broker faster; CPU s/GB: below 1 is the broker cheaper):")
		fmt.Fprintln(w)
		for _, q := range rep.Ratios {
			fmt.Fprintf(w, "- %d partitions: produce MB/s %s, consume MB/s %s, CPU s/GB consume %s (produce %s)\n",
				q.Partitions, fmtRatio(q.ProduceMBps), fmtRatio(q.ConsumeMBps), fmtRatio(q.ConsumeTargetCPUPer), fmtRatio(q.ProduceTargetCPUPer))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "(!) %s\n", n)
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
