package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
	"github.com/rocketkafka/broker/protocol"
)

// startMetrics serves GET /metrics in the Prometheus text format, record
// lookups by key under /keys, and Go's profiles under /debug/pprof/.
func startMetrics(addr string, listeners []*listener, store *log.Log, logger *zap.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		var n netpoll.Stats
		var p protocol.Stats
		for _, l := range listeners {
			n.Add(l.srv.Stats())
			p.Add(l.handler.Stats())
		}
		s := store.Stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, m := range []struct {
			name, help string
			value      any
		}{
			{"broker_connections_total", "Connections accepted.", n.Connections},
			{"broker_connections_active", "Connections open now.", n.ActiveConnections},
			{"broker_requests_total", "Requests served.", p.Requests},
			{"broker_network_bytes_read_total", "Bytes read from clients.", n.BytesRead},
			{"broker_network_bytes_written_total", "Bytes written to clients, all paths.", n.BytesWritten},
			{"broker_network_sendfile_bytes_total", "Bytes sent to clients with sendfile.", n.SendfileBytes},
			{"broker_network_buffer_bytes_total", "Bytes written to clients from memory.", n.BufferBytes},
			{"broker_fetch_record_bytes_copied_total", "Fetched record bytes copied from the mmap.", p.FetchBytesCopied},
			{"broker_fetch_record_bytes_sendfile_total", "Fetched record bytes sent with sendfile.", p.FetchBytesFile},
			{"broker_commitlog_end_position", "CommitLog write position.", s.CommitLogEnd},
			{"broker_commitlog_synced_position", "CommitLog position covered by fsync.", s.CommitLogSynced},
			{"broker_topics", "Topics.", s.Topics},
			{"broker_partitions", "Partitions.", s.Partitions},
			{"broker_key_index_files", "IndexFiles holding record keys.", s.KeyIndexFiles},
			{"broker_key_index_entries", "Record keys indexed.", s.KeyIndexEntries},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n%s %v\n", m.name, m.help, m.name, m.value)
		}
	})
	// Profiles on the same opt-in listener: what the broker spends CPU on
	// is the first question when it is slow.
	mux.HandleFunc("GET /keys", keysHandler(store))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux}
	go func() {
		if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Error("metrics listener stopped", zap.Error(err))
		}
	}()
	logger.Info("metrics listening", zap.String("addr", ln.Addr().String()))
	return hs, nil
}
