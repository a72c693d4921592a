package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rocketkafka/broker/log"
)

// keyRecordJSON is one record found by key, as the admin endpoint sends it.
type keyRecordJSON struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
	Key       []byte `json:"key"`
	Value     []byte `json:"value"`
}

// maxLookupLimit bounds how many records one lookup returns.
const maxLookupLimit = 10000

// keysHandler serves GET /keys?topic=T&key=K[&from=MS][&to=MS][&limit=N]:
// the records of topic T with key K whose timestamps are in [from, to],
// newest first, as a JSON array.
func keysHandler(store *log.Log) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, err1 := msParam(q, "from", 0)
		to, err2 := msParam(q, "to", math.MaxInt64)
		limit, err3 := msParam(q, "limit", 100)
		if err := errors.Join(err1, err2, err3); err != nil || q.Get("topic") == "" || !q.Has("key") || limit < 1 || limit > maxLookupLimit {
			http.Error(w, fmt.Sprintf("usage: /keys?topic=T&key=K[&from=MS][&to=MS][&limit=N], N from 1 to %d", maxLookupLimit), http.StatusBadRequest)
			return
		}
		recs, err := store.LookupKey(q.Get("topic"), []byte(q.Get("key")), from, to, int(limit))
		if errors.Is(err, log.ErrUnknownTopic) {
			http.Error(w, "unknown topic", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := make([]keyRecordJSON, 0, len(recs))
		for _, r := range recs {
			out = append(out, keyRecordJSON{r.Partition, r.Offset, r.Timestamp, r.Key, r.Value})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}
}

func msParam(q url.Values, name string, def int64) (int64, error) {
	if !q.Has(name) {
		return def, nil
	}
	return strconv.ParseInt(q.Get(name), 10, 64)
}

// lookup is the `broker lookup` subcommand: it asks a running broker's
// admin endpoint (metrics.listener) for the records with a key.
func lookup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "localhost:9093", "the broker's metrics.listener address")
	topic := fs.String("topic", "", "topic to search (required)")
	key := fs.String("key", "", "record key (required)")
	from := fs.String("from", "", "earliest timestamp: RFC 3339 or Unix milliseconds (default: the beginning)")
	to := fs.String("to", "", "latest timestamp: RFC 3339 or Unix milliseconds (default: now and later)")
	limit := fs.Int("limit", 100, "most records to print")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: broker lookup --admin HOST:PORT --topic T --key K [--from TIME] [--to TIME] [--limit N]")
		fmt.Fprintln(stderr, "Finds the records with key K in topic T, newest first, through a running broker's metrics.listener.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *topic == "" || !flagSet(fs, "key") {
		fs.Usage()
		return 2
	}
	q := url.Values{"topic": {*topic}, "key": {*key}, "limit": {strconv.Itoa(*limit)}}
	for name, v := range map[string]string{"from": *from, "to": *to} {
		if v == "" {
			continue
		}
		ms, err := parseTime(v)
		if err != nil {
			fmt.Fprintf(stderr, "broker lookup: --%s %q: want RFC 3339 or Unix milliseconds\n", name, v)
			return 2
		}
		q.Set(name, strconv.FormatInt(ms, 10))
	}
	resp, err := http.Get("http://" + *admin + "/keys?" + q.Encode())
	if err != nil {
		fmt.Fprintf(stderr, "broker lookup: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(stderr, "broker lookup: %s: %s", resp.Status, body)
		return 1
	}
	var recs []keyRecordJSON
	if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil {
		fmt.Fprintf(stderr, "broker lookup: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOFFSET\tTIMESTAMP\tVALUE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", r.Partition, r.Offset, time.UnixMilli(r.Timestamp).UTC().Format(time.RFC3339Nano), r.Value)
	}
	tw.Flush()
	return 0
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseTime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UnixMilli(), err
}
