// Command testbroker runs one node of the built-in broker as its own OS process, so the external target's
// tests can drive a multi-process cluster with real signals (kill -KILL, -STOP, -CONT, -TERM) through the
// commands they configure. It exists for those tests only; `kafkatrial broker` is the user-facing command.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

func main() {
	id := flag.Int("id", 1, "node id")
	listen := flag.String("listen", "127.0.0.1:0", "client listener host:port")
	voters := flag.String("voters", "", "controller quorum voters: id=host:port,... (includes this node)")
	data := flag.String("data", "", "data directory (required)")
	pidfile := flag.String("pidfile", "", "file to write this process's id to once serving")
	flag.Parse()
	if err := run(int32(*id), *listen, *voters, *data, *pidfile); err != nil {
		fmt.Fprintln(os.Stderr, "testbroker:", err)
		os.Exit(1)
	}
}

func run(id int32, listen, voterList, data, pidfile string) error {
	if data == "" {
		return fmt.Errorf("-data is required")
	}
	vs := map[int32]string{}
	for _, v := range strings.Split(voterList, ",") {
		if v == "" {
			continue
		}
		k, addr, ok := strings.Cut(v, "=")
		n, err := strconv.ParseInt(k, 10, 32)
		if !ok || err != nil {
			return fmt.Errorf("-voters: %q is not id=host:port", v)
		}
		vs[int32(n)] = addr
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", data, err)
	}
	disk, err := storage.NewDisk(data)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, err := broker.NewNode(broker.Config{NodeID: id, ListenAddr: listen, Voters: vs, Logger: logger,
		Defaults: broker.TopicDefaults{ReplicationFactor: int16(max(1, min(3, len(vs))))}}, disk)
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	if pidfile != "" {
		tmp := pidfile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Clean(pidfile)); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	err = node.Close()
	if pidfile != "" {
		os.Remove(pidfile)
	}
	return err
}
