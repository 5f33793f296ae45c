package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// Node is one broker of the built-in cluster: a Kafka-protocol listener, the partitions it hosts, its
// controller (a Raft voter or observer of the metadata quorum) and its group coordinator.
//
// Lifecycle: NewNode, Start, then exactly one of Close (clean), Kill (hard) or LoseUnsynced (power loss).
// A restart is NewNode on the same Disk and DataDir: the node rebuilds only from what is on disk.
//
// Locking: n.mu guards the connection set, the listener and the stopping flag; n.partsMu guards the
// partition map (each partition has its own lock, see partition.go). Handlers never hold n.mu.
type Node struct {
	cfg  Config
	disk *storage.Disk
	log  *slog.Logger
	// lock is held on the node's data directory from NewNode until the node stops (Kafka's .lock).
	lock *DirLock

	// ctx is cancelled when the node stops; every goroutine and blocked handler watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	stopping bool
	started  bool
	ln       net.Listener
	addr     string
	advHost  string
	advPort  int32
	conns    map[net.Conn]struct{}

	partsMu sync.RWMutex
	parts   map[topicPartition]*partition

	// img is the latest metadata image this node applied (never nil after Start).
	img atomic.Pointer[meta.Image]
	// meta is the node's path to the metadata quorum.
	meta metadataService

	// groups coordinates the groups of the __consumer_offsets partitions this node leads (offsets_topic.go).
	groups *groupCoordinators
	pids   *producerIDAllocator
	// hwCheckpoint is the checkpoint read at NewNode: the starting high watermark of each partition.
	hwCheckpoint map[topicPartition]int64
	// fetchers replicate the partitions this node follows, one per leader node (fetcher.go).
	fetchers fetcherSet
	// gate holds every worker while the node is paused (Pause, Resume).
	gate pauseGate
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// Files of a node below its DataDir.
const (
	logsDirName       = "logs"
	controllerDirName = "controller"
	producerIDFile    = "producer-id-block"
)

// NewNode builds a node over disk, recovering every partition log found under cfg.DataDir. It listens to
// nothing until Start. It locks the data directory (LockDir) until Close, Kill or LoseUnsynced, so a node
// whose Start failed must still be killed.
func NewNode(cfg Config, disk *storage.Disk) (*Node, error) {
	if disk == nil {
		return nil, errors.New("broker: NewNode needs a Disk")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:   cfg,
		disk:  disk,
		log:   cfg.Logger.With("node", cfg.NodeID),
		conns: map[net.Conn]struct{}{},
		parts: map[topicPartition]*partition{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// The lock comes before anything reads or writes the directory: a second node on it must fail at once,
	// not recover logs another node is writing or join that node's quorum under its identity.
	dir := cfg.DataDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(disk.Root(), dir)
	}
	lock, err := LockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: node %d: %w", cfg.NodeID, err)
	}
	n.lock = lock
	n.hwCheckpoint = n.loadHWCheckpoint()
	if err := disk.MkdirAll(n.path(logsDirName)); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("broker: creating the log directory: %w", err)
	}
	pids, err := newProducerIDAllocator(disk, n.path(producerIDFile), cfg.NodeID)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("broker: loading the producer id block: %w", err)
	}
	n.pids = pids
	n.groups = newGroupCoordinators(n)
	return n, nil
}

// path returns name inside the node's DataDir.
func (n *Node) path(name ...string) string {
	return filepath.Join(append([]string{n.cfg.DataDir}, name...)...)
}

// Start opens the client listener, starts the controller, registers the node and begins serving.
func (n *Node) Start() error {
	n.mu.Lock()
	if n.started || n.stopping {
		n.mu.Unlock()
		return errors.New("broker: Start called twice or after stop")
	}
	n.started = true
	n.mu.Unlock()
	listen := n.cfg.Listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", n.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("broker: listening on %s (listeners): %w", n.cfg.ListenAddr, err)
	}
	host, port, err := advertisedAddr(ln.Addr().String(), n.cfg.AdvertisedHost, n.cfg.AdvertisedPort)
	if err != nil {
		ln.Close()
		return err
	}
	n.mu.Lock()
	n.ln, n.addr, n.advHost, n.advPort = ln, ln.Addr().String(), host, port
	n.mu.Unlock()
	if err := n.startMetadata(); err != nil {
		ln.Close()
		return err
	}
	n.wg.Add(1)
	go n.acceptLoop(ln)
	n.log.Info("broker node serving", "addr", n.addr, "advertised", net.JoinHostPort(host, strconv.Itoa(int(port))))
	return nil
}

// advertisedAddr fills the advertised host and port from the listener's address where not configured.
func advertisedAddr(listenAddr, host string, port int32) (string, int32, error) {
	h, p, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", 0, fmt.Errorf("broker: listener address %q: %w", listenAddr, err)
	}
	if host == "" {
		host = h
	}
	if port == 0 {
		pn, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return "", 0, fmt.Errorf("broker: listener port %q: %w", p, err)
		}
		port = int32(pn)
	}
	return host, port, nil
}

// Addr is the client listener's address ("127.0.0.1:9092"), "" before Start.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// ID is the node id.
func (n *Node) ID() int32 { return n.cfg.NodeID }

// advertised is the host and port Metadata gives clients for this node.
func (n *Node) advertised() (string, int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.advHost, n.advPort
}

// image is the latest metadata image; nil before Start.
func (n *Node) image() *meta.Image { return n.img.Load() }

// Close stops the node cleanly: leadership moves away (controlled shutdown), connections close, every
// partition is flushed and checkpointed, and the controller stops.
func (n *Node) Close() error {
	if !n.beginStop() {
		return nil
	}
	n.controlledShutdown()
	n.stopServing()
	var errs []error
	if err := n.writeHWCheckpoint(); err != nil {
		errs = append(errs, err)
	}
	n.partsMu.Lock()
	for tp, p := range n.parts {
		if err := p.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing partition %s-%d: %w", tp.topic, tp.partition, err))
		}
	}
	n.parts = map[topicPartition]*partition{}
	n.partsMu.Unlock()
	n.groups.close()
	if err := n.meta.close(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the controller: %w", err))
	}
	if err := n.lock.Unlock(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("broker: clean close of node %d: %w", n.cfg.NodeID, err)
	}
	n.log.Info("broker node closed cleanly")
	return nil
}

// Kill stops the node as a process kill would: no flush, no checkpoint, no goodbye to the controller.
// Every connection closes and every goroutine stops; what was written to files stays (the page cache
// survives a process crash), what was only in memory is gone.
func (n *Node) Kill() {
	if n.kill() {
		n.releaseLock()
	}
}

// kill is Kill without releasing the data directory's lock; false if the node had already stopped.
func (n *Node) kill() bool {
	if !n.beginStop() {
		return false
	}
	n.stopServing()
	n.partsMu.Lock()
	for _, p := range n.parts {
		p.kill()
	}
	n.parts = map[topicPartition]*partition{}
	n.partsMu.Unlock()
	n.groups.close()
	n.meta.kill()
	n.log.Info("broker node killed")
	return true
}

// releaseLock releases the data directory's lock as the end of the process would (a failure is only logged:
// the node is down either way).
func (n *Node) releaseLock() {
	if err := n.lock.Unlock(); err != nil {
		n.log.Warn("releasing the data directory lock", "err", err)
	}
}

// LoseUnsynced kills the node and then drops everything its disk never fsynced: a power loss. The data
// directory stays locked until the files are cut, so no new incarnation opens them halfway.
func (n *Node) LoseUnsynced() error {
	killed := n.kill()
	err := n.disk.LoseUnsynced()
	if killed {
		n.releaseLock()
	}
	if err != nil {
		return fmt.Errorf("broker: power loss on node %d: %w", n.cfg.NodeID, err)
	}
	return nil
}

// beginStop marks the node stopping; false if it already was.
func (n *Node) beginStop() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return false
	}
	n.stopping = true
	return true
}

// stopServing closes the listener and every connection, cancels every handler and waits for the node's
// goroutines.
func (n *Node) stopServing() {
	n.mu.Lock()
	if n.ln != nil {
		n.ln.Close()
	}
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.cancel()
	n.stopFetchers()
	// A paused node that stops must not leave its workers parked.
	n.gate.resume()
	n.wg.Wait()
}

// DirLock is an exclusive lock on a data directory, held while a node (or an in-process cluster) uses it, as
// Kafka locks each log directory with its .lock file. It is an flock(2) lock on <dir>/.lock: the kernel drops it
// when the process ends however it ends, and it excludes a second holder in the same process too (each
// LockDir opens the file anew, and flock locks belong to the open file).
type DirLock struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// lockFileName is the lock file inside a locked directory (Kafka's name).
const lockFileName = ".lock"

// ErrDirLocked is returned by LockDir for a directory another holder has locked.
var ErrDirLocked = errors.New("data directory in use")

// LockDir creates dir if needed and locks it, failing at once (ErrDirLocked) when another holder, in this or
// another process, has it.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: failed to acquire the lock on %s: another kafkatrial broker (in another process, "+
				"or another node of this one) is using data directory %s", ErrDirLocked, path, dir)
		}
		return nil, fmt.Errorf("locking data directory %s (%s): %w", dir, path, err)
	}
	return &DirLock{f: f, path: path}, nil
}

// Unlock releases the lock; later calls do nothing. The lock file stays, as Kafka's does.
func (l *DirLock) Unlock() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor of the open file releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("releasing the lock %s: %w", l.path, err)
	}
	return nil
}
