package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/kafkatrial/kafkatrial/target/builtin"
	"github.com/spf13/cobra"
)

func init() { rootCmd.AddCommand(newBrokerCmd()) }

func newBrokerCmd() *cobra.Command {
	var (
		nodes int
		port  int
		host  string
		data  string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the built-in Kafka-protocol broker cluster in the foreground for your own clients",
		Long: "Runs the built-in broker until Ctrl-C (SIGINT or SIGTERM), which stops it cleanly. It prints the\n" +
			"bootstrap address(es) first. --nodes 1 serves on --host:--port; --nodes N > 1 runs a replicated\n" +
			"cluster of N nodes in this process (one Raft controller voter per node): clients on --port..--port+N-1,\n" +
			"controllers on the next N ports (--port 0 picks free ones).\n" +
			"Without --data it keeps its files in a temporary directory that is removed on exit. --data is locked\n" +
			"while in use: a second broker on it exits at once (code 3). A restart on the same --data keeps topics,\n" +
			"data and committed offsets, also with other ports (--port 0 included).\n" +
			"`kafkatrial broker node` runs one node of a multi-process cluster instead.",
		Example: "  kafkatrial broker --port 9092 --data ./broker-data\n  kafkatrial broker --nodes 3\n  kcat -b 127.0.0.1:9092 -L",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > broker.MaxClusterNodes {
				return withCode(exitUsage, fmt.Errorf("--nodes %d: want 1 to %d", nodes, broker.MaxClusterNodes))
			}
			if port < 0 || port > 65535 {
				return withCode(exitUsage, fmt.Errorf("--port %d is not a port", port))
			}
			if nodes > 1 && port > 0 && port+2*nodes-1 > 65535 {
				// Clients on port..port+N-1, controllers on the next N ports.
				return withCode(exitUsage, fmt.Errorf("--port %d leaves no room for %d nodes (it needs ports %d to %d)",
					port, nodes, port, port+2*nodes-1))
			}
			if nodes == 1 {
				return runBroker(cmd, host, port, data)
			}
			return runCluster(cmd, nodes, host, port, data)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 1, "number of broker nodes")
	cmd.Flags().IntVar(&port, "port", 9092, "client port (of node 1; node N uses port+N-1); 0 picks free ones")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on and advertise")
	cmd.Flags().StringVar(&data, "data", "", "data directory (default: a temporary directory removed on exit)")
	cmd.AddCommand(newBrokerNodeCmd())
	return cmd
}

// dataDir returns data, creating it, or a temporary directory and its cleanup.
func dataDir(data string) (string, func(), error) {
	if data == "" {
		dir, err := os.MkdirTemp("", "kafkatrial-broker-")
		if err != nil {
			return "", nil, withCode(exitCannotRun, fmt.Errorf("creating a temporary data directory: %w", err))
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", nil, withCode(exitCannotRun, fmt.Errorf("creating --data %s: %w", data, err))
	}
	return data, func() {}, nil
}

// runBroker runs one node until a signal arrives.
func runBroker(cmd *cobra.Command, host string, port int, data string) error {
	dir, cleanup, err := dataDir(data)
	if err != nil {
		return err
	}
	defer cleanup()
	// The whole --data directory is locked, as `broker --nodes N` locks it, so the two modes exclude each other.
	lock, err := broker.LockDir(dir)
	if err != nil {
		return withCode(exitCannotRun, err)
	}
	defer lock.Unlock()
	return runNode(cmd, broker.Config{NodeID: 1, DataDir: "node-1", ListenAddr: net.JoinHostPort(host, strconv.Itoa(port))}, dir)
}

// runCluster runs an in-process cluster until a signal arrives.
func runCluster(cmd *cobra.Command, nodes int, host string, port int, data string) error {
	dir, cleanup, err := dataDir(data)
	if err != nil {
		return err
	}
	defer cleanup()
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := broker.StartCluster(broker.ClusterConfig{Nodes: nodes, Dir: dir, Logger: logger, BasePort: port,
		Host: func(int32) string { return host }})
	if err != nil {
		return withCode(exitCannotRun, err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), "bootstrap:", strings.Join(c.Bootstrap(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	<-sig
	fmt.Fprintln(cmd.ErrOrStderr(), "stopping the cluster cleanly")
	if err := c.Close(); err != nil {
		return withCode(exitCannotRun, errors.Join(errors.New("clean stop failed"), err))
	}
	return nil
}

func newBrokerNodeCmd() *cobra.Command {
	var (
		id                                  int
		listen, advertise, controller, data string
		voters, timing                      string
		sets                                []string
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one node of a multi-process built-in cluster (one per container or OS process)",
		Long: "Runs one broker node with its controller voter until SIGINT or SIGTERM (clean stop: leadership\n" +
			"moves away first). SIGUSR1 simulates a power loss: the node is killed and every byte it wrote without\n" +
			"fsync is cut from its files, then the process exits (a restart on the same --data sees what a machine\n" +
			"would after losing power). Every node of a cluster gets the same --voters.",
		Example: "  kafkatrial broker node --id 1 --listen 0.0.0.0:9092 --advertise node-1:9092 \\\n" +
			"    --controller node-1:9093 --voters 1@node-1:9093,2@node-2:9093,3@node-3:9093 --data /data",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := broker.ParseVoters(voters)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("--voters: %w", err))
			}
			cfg := broker.Config{NodeID: int32(id), DataDir: "node-" + strconv.Itoa(id), ListenAddr: listen,
				ControllerAddr: controller, Voters: vs}
			settings := make(map[string]string, len(sets))
			for _, kv := range sets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return withCode(exitUsage, fmt.Errorf("--set %q: want key=value (a broker setting by its Kafka name)", kv))
				}
				settings[k] = v
			}
			if cfg.Defaults, cfg.Timing, cfg.OffsetsTopic, err = builtin.BrokerConfig(timing, settings); err != nil {
				return withCode(exitUsage, err)
			}
			if advertise != "" {
				h, p, err := net.SplitHostPort(advertise)
				pn, perr := strconv.ParseInt(p, 10, 32)
				if err != nil || perr != nil {
					return withCode(exitUsage, fmt.Errorf("--advertise %q is not host:port", advertise))
				}
				cfg.AdvertisedHost, cfg.AdvertisedPort = h, int32(pn)
			}
			if data == "" {
				return withCode(exitUsage, errors.New("--data is required"))
			}
			dir, _, err := dataDir(data)
			if err != nil {
				return err
			}
			return runNode(cmd, cfg, dir)
		},
	}
	cmd.Flags().IntVar(&id, "id", 1, "node id (node.id)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "client listener host:port (listeners)")
	cmd.Flags().StringVar(&advertise, "advertise", "", "host:port given to clients (advertised.listeners); default the listener's")
	cmd.Flags().StringVar(&controller, "controller", "", "this node's controller (Raft) address host:port; default its --voters entry")
	cmd.Flags().StringVar(&voters, "voters", "", "controller.quorum.voters: id@host:port,... (empty: a single-voter quorum of this node)")
	cmd.Flags().StringVar(&data, "data", "", "data directory")
	cmd.Flags().StringVar(&timing, "timing", "trial", "timing profile: trial (failure detected and a leader elected in about a second) or kafka (Kafka's defaults)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "broker setting by its Kafka name, key=value (repeatable), e.g. replica.lag.time.max.ms=500")
	return cmd
}

// runNode runs one node over dir until SIGINT/SIGTERM (clean stop) or SIGUSR1 (power loss).
func runNode(cmd *cobra.Command, cfg broker.Config, dir string) error {
	disk, err := storage.NewDisk(dir)
	if err != nil {
		return withCode(exitCannotRun, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, err := broker.NewNode(cfg, disk)
	if errors.Is(err, broker.ErrDirLocked) {
		return withCode(exitCannotRun, err)
	}
	if err != nil {
		return withCode(exitUsage, err)
	}
	if err := node.Start(); err != nil {
		node.Kill()
		return withCode(exitCannotRun, err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), "bootstrap:", node.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sig)
	if s := <-sig; s == syscall.SIGUSR1 {
		fmt.Fprintln(cmd.ErrOrStderr(), "SIGUSR1: power loss (unsynced writes dropped)")
		if err := node.LoseUnsynced(); err != nil {
			return withCode(exitCannotRun, err)
		}
		return nil
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "stopping the broker cleanly")
	if err := node.Close(); err != nil {
		return withCode(exitCannotRun, errors.Join(errors.New("clean stop failed"), err))
	}
	return nil
}
