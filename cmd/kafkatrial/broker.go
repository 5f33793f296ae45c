package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/broker/storage"
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
		Short: "Run the built-in Kafka-protocol broker in the foreground for your own clients",
		Long: "Runs the built-in broker on --host:--port until Ctrl-C (SIGINT or SIGTERM), which stops it cleanly.\n" +
			"It prints the bootstrap address first. Without --data it keeps its files in a temporary directory\n" +
			"that is removed on exit. Only --nodes 1 runs for now: multi-node clusters arrive with replication.",
		Example: "  kafkatrial broker --port 9092 --data ./broker-data\n  kcat -b 127.0.0.1:9092 -L",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes != 1 {
				return withCode(exitUsage, fmt.Errorf("--nodes %d: only a single node runs for now; multi-node clusters arrive with replication", nodes))
			}
			if port < 0 || port > 65535 {
				return withCode(exitUsage, fmt.Errorf("--port %d is not a port", port))
			}
			return runBroker(cmd, host, port, data)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 1, "number of broker nodes (only 1 for now)")
	cmd.Flags().IntVar(&port, "port", 9092, "client port of the first node (0 picks a free one)")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on and advertise")
	cmd.Flags().StringVar(&data, "data", "", "data directory (default: a temporary directory removed on exit)")
	return cmd
}

// runBroker runs one node until a signal arrives.
func runBroker(cmd *cobra.Command, host string, port int, data string) error {
	if data == "" {
		dir, err := os.MkdirTemp("", "kafkatrial-broker-")
		if err != nil {
			return withCode(exitCannotRun, fmt.Errorf("creating a temporary data directory: %w", err))
		}
		defer os.RemoveAll(dir)
		data = dir
	} else if err := os.MkdirAll(data, 0o755); err != nil {
		return withCode(exitCannotRun, fmt.Errorf("creating --data %s: %w", data, err))
	}
	disk, err := storage.NewDisk(data)
	if err != nil {
		return withCode(exitCannotRun, err)
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, err := broker.NewNode(broker.Config{NodeID: 1, DataDir: "node-1",
		ListenAddr: net.JoinHostPort(host, strconv.Itoa(port)), Logger: logger}, disk)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if err := node.Start(); err != nil {
		return withCode(exitCannotRun, err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), "bootstrap:", node.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	<-sig
	fmt.Fprintln(cmd.ErrOrStderr(), "stopping the broker cleanly")
	if err := node.Close(); err != nil {
		return withCode(exitCannotRun, errors.Join(errors.New("clean stop failed"), err))
	}
	return nil
}
