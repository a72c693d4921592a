// Command broker runs the Kafka-wire-compatible broker: with no flags it
// listens on localhost:9092 and keeps its data under ./data. `broker
// lookup` asks a running broker for the records with a given key.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rocketkafka/broker/config"
	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
	"github.com/rocketkafka/broker/protocol"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "lookup" {
		os.Exit(lookup(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Environ()))
}

// run starts the broker and blocks until SIGTERM or SIGINT; it returns the
// exit status: 0 after a clean shutdown, 2 for bad configuration, 1 otherwise.
func run(args, environ []string) int {
	cfg, ignored, err := config.Load(args, environ)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker: "+err.Error())
		return 2
	}
	logger, err := newLogger(cfg.LoggerFormat, cfg.LoggerLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker: "+err.Error())
		return 2
	}
	defer logger.Sync()
	for _, key := range ignored {
		logger.Warn("ignoring unknown config key", zap.String("key", key))
	}
	if err := serve(cfg, logger); err != nil {
		logger.Error("broker stopped", zap.Error(err))
		return 1
	}
	return 0
}

func serve(cfg *config.Config, logger *zap.Logger) error {
	topicDefaults := cfg.TopicDefaults()
	defaults := make(map[string]string, len(topicDefaults))
	protoDefaults := make(map[string]protocol.TopicConfigDefault, len(topicDefaults))
	for name, d := range topicDefaults {
		defaults[name] = d.Value
		protoDefaults[name] = protocol.TopicConfigDefault{Value: d.Value, BrokerKey: d.BrokerKey, Default: d.Default, Type: d.Type}
	}
	flushInterval := time.Duration(cfg.FlushIntervalMs) * time.Millisecond
	if cfg.LogFlushIntervalMs > 0 {
		flushInterval = time.Duration(cfg.LogFlushIntervalMs) * time.Millisecond
	}
	store, err := log.Open(log.Options{
		Dir:                 cfg.LogDir,
		Logger:              logger.Named("store"),
		SegmentBytes:        cfg.CommitLogSegmentBytes,
		ConsumeQueueEntries: cfg.ConsumeQueueEntries,
		SyncFlush:           cfg.FlushDiskType == "SYNC_FLUSH",
		FlushInterval:       flushInterval,
		FlushMessages:       cfg.LogFlushIntervalMessages,
		RetentionInterval:   time.Duration(cfg.LogRetentionCheckIntervalMs) * time.Millisecond,
		CheckpointInterval:  time.Duration(cfg.CheckpointIntervalMs) * time.Millisecond,
		DiskReclaimRatio:    cfg.DiskReclaimRatio,
		DiskCriticalRatio:   cfg.DiskCriticalRatio,
		ClusterID:           cfg.ClusterID,
		TopicDefaults:       defaults,
	})
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", cfg.LogDir, err)
	}
	groups, err := group.Open(group.Options{
		Store:                  store,
		Logger:                 logger.Named("group"),
		MinSessionTimeout:      time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond,
		MaxSessionTimeout:      time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond,
		InitialRebalanceDelay:  time.Duration(cfg.InitialRebalanceDelayMs) * time.Millisecond,
		OffsetsRetention:       time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute,
		RetentionCheckInterval: time.Duration(cfg.OffsetsCheckIntervalMs) * time.Millisecond,
		MaxSize:                int(cfg.GroupMaxSize),

		ConsumerSessionTimeout:    time.Duration(cfg.ConsumerSessionTimeoutMs) * time.Millisecond,
		ConsumerHeartbeatInterval: time.Duration(cfg.ConsumerHeartbeatIntervalMs) * time.Millisecond,
		ConsumerMaxSize:           int(cfg.ConsumerMaxSize),
	})
	if err != nil {
		store.Close()
		return fmt.Errorf("starting the group coordinator: %w", err)
	}
	var brokerConfigs []protocol.ConfigEntry
	for _, e := range cfg.Entries() {
		brokerConfigs = append(brokerConfigs, protocol.ConfigEntry{Name: e.Name, Value: e.Value, Default: e.Default, ReadOnly: e.ReadOnly, Sensitive: e.Sensitive, Type: e.Type, Doc: e.Doc})
	}
	pcfg := protocol.Config{
		NodeID:                   cfg.NodeID,
		AutoCreateTopics:         cfg.AutoCreateTopics,
		NumPartitions:            cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		FetchSendfileMinBytes:    cfg.FetchSendfileMinBytes,
		FetchSessionSlots:        int(cfg.FetchSessionCacheSlots),
		BrokerConfigs:            brokerConfigs,
		TopicDefaults:            protoDefaults,
		ValidateTopicConfig:      config.ValidateTopicConfig,
	}
	// One server per client listener, each advertising its own address,
	// as a Kafka broker answers Metadata with the endpoint of the listener
	// the request came in on.
	var listeners []*listener
	// All listeners drain at once, within one shutdown timeout: one at a
	// time, a slow drain of one would leave the others serving and then
	// cut off.
	shutdown := func(ctx context.Context) error {
		errs := make([]error, len(listeners))
		var wg sync.WaitGroup
		for i, l := range listeners {
			wg.Go(func() { errs[i] = l.srv.Shutdown(ctx) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for _, l := range cfg.ClientListeners() {
		ln, err := listen(l, cfg.AdvertisedFor(l), pcfg, cfg, store, groups, logger)
		if err != nil {
			shutdown(context.Background())
			groups.Close()
			store.Close()
			return err
		}
		listeners = append(listeners, ln)
	}

	var metrics *http.Server
	if cfg.MetricsListener != "" {
		if metrics, err = startMetrics(cfg.MetricsListener, listeners, store, logger); err != nil {
			shutdown(context.Background())
			groups.Close()
			store.Close()
			return err
		}
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { served <- l.srv.Serve() }()
	}
	var serveErr error
	select {
	case sig := <-signals:
		logger.Info("shutting down", zap.String("signal", sig.String()))
	case serveErr = <-served:
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeoutMs)*time.Millisecond)
	defer cancel()
	errs := []error{serveErr, shutdown(ctx)}
	if metrics != nil {
		errs = append(errs, metrics.Shutdown(ctx))
	}
	// After the server: no request is in the coordinator any more, and
	// before the store, which the coordinator writes to.
	groups.Close()
	errs = append(errs, store.Close())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("clean shutdown")
	return nil
}

func newLogger(format, level string) (*zap.Logger, error) {
	var zcfg zap.Config
	if format == "json" {
		zcfg = zap.NewProductionConfig()
	} else {
		zcfg = zap.NewDevelopmentConfig()
		zcfg.Development = false
		zcfg.DisableStacktrace = true
		zcfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
			zcfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		}
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logger.level: %w", err)
	}
	zcfg.Level = zap.NewAtomicLevelAt(lvl)
	return zcfg.Build()
}

// listener is one client listener: its server and the handler that
// advertises its address.
type listener struct {
	srv     *netpoll.Server
	handler *protocol.Handler
}

// listen binds a client listener and builds its handler, which advertises
// advertised (with the bound port if the listener asked for port 0).
func listen(l, advertised config.Listener, pcfg protocol.Config, cfg *config.Config, store *log.Log, groups *group.Coordinator, logger *zap.Logger) (*listener, error) {
	// The listener binds before the handler exists so that a port of 0
	// (a free port, as tests use) can be advertised as the port it got.
	var handler deferredHandler
	srv, err := netpoll.Listen(netpoll.Config{
		Addr:           l.Addr(),
		MaxFrameBytes:  cfg.SocketRequestMaxBytes,
		MaxConnections: cfg.MaxConnections,
		Logger:         logger.Named("net"),
	}, &handler)
	if err != nil {
		return nil, err
	}
	pcfg.AdvertisedHost, pcfg.AdvertisedPort = advertised.Host, int32(advertised.Port)
	if pcfg.AdvertisedPort == 0 {
		pcfg.AdvertisedPort = int32(srv.Addr().(*net.TCPAddr).Port)
	}
	handler.Handler = protocol.New(pcfg, store, logger.Named("protocol"), protocol.WithGroups(groups))
	logger.Info("broker listening",
		zap.String("addr", srv.Addr().String()),
		zap.String("listener", l.Name),
		zap.String("advertised", net.JoinHostPort(pcfg.AdvertisedHost, strconv.Itoa(int(pcfg.AdvertisedPort)))),
		zap.String("cluster_id", store.ClusterID()), zap.String("log_dir", cfg.LogDir))
	return &listener{srv: srv, handler: handler.Handler}, nil
}

// deferredHandler lets the listener bind before the protocol handler is
// built; Serve is only called once srv.Serve runs, after it is set.
type deferredHandler struct{ *protocol.Handler }
