// Package server assembles one synod member from its Config: the Pebble
// database, the raft log, the mvcc store, the raft loop, the peer transport
// and the client-facing etcd v3 gRPC API. It owns start and stop; cmd/synod
// only parses flags into a Config.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/synod-db/synod/etcdapi"
	"github.com/synod-db/synod/membership"
	"github.com/synod-db/synod/metrics"
	"github.com/synod-db/synod/raftnode"
	"github.com/synod-db/synod/statemachine"
	"github.com/synod-db/synod/storage"
	"github.com/synod-db/synod/tlsconfig"
	"github.com/synod-db/synod/transport"
	"github.com/synod-db/synod/watch"
)

// Member is one running synod member: wiring and lifecycle only, the
// state machine applies. Create it with New, then Start; Stop shuts
// everything down. Its methods are safe for concurrent use; the API edge
// reaches it through the etcdapi.Backends of backends.go. Its parts are
// small types, each in its own file, embedded so their fields read as the
// member's.
type Member struct {
	cfg           Config
	log           *slog.Logger
	ids                                 // this member's ID and its cluster's (ids.go)
	disk                                // the Pebble database and the raft log in it (disk.go)
	sm            *statemachine.Machine // the state machine: every store and the apply path
	hub           *watch.Hub            // watch streams, fed by sm
	node          *raftnode.Node
	tr            *transport.GRPC
	listeners     // client, peer, metrics and self listeners, servers, TLS (listeners.go)
	observability // metrics, audit log, tracing (observability.go)
	duties        // what background duties sample and bound (duties.go)
	lifecycle     // stop, background goroutines, removal (lifecycle.go)
}

// New opens (or creates) the member's data directory and binds its
// listeners, so that its ports are known, but serves nothing until Start.
func New(cfg Config, logger *slog.Logger) (_ *Member, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Member{cfg: cfg, log: logger.With("member", cfg.Name), lifecycle: lifecycle{stopped: make(chan struct{})},
		duties: newDuties()}
	if m.tracer, err = newTracer(cfg.Tracing, m.log); err != nil {
		return nil, err
	}
	defer func() { // a member that does not start flushes nothing
		if err != nil {
			m.stopTracing()
		}
	}()
	if m.tls, err = loadTLS(&m.cfg, m.log); err != nil {
		return nil, err
	}
	if err := m.openAudit(); err != nil {
		return nil, err
	}
	if err := m.open(); err != nil {
		m.closeStorage()
		m.closeAudit()
		return nil, err
	}
	if err := m.listen(); err != nil {
		m.closeListeners()
		m.closeStorage()
		m.closeAudit()
		return nil, err
	}
	if cfg.InitialCorruptCheck {
		ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout())
		err := m.checkInitialCorruption(ctx)
		cancel()
		if err != nil {
			m.tr.Close()
			m.closeListeners()
			m.closeStorage()
			m.closeAudit()
			return nil, err
		}
	}
	return m, nil
}

func (m *Member) open() error {
	if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("server: create data dir: %w", err)
	}
	m.stalls.state, m.stalls.log = metrics.NewWriteStalls(time.Now), metrics.NewWriteStalls(time.Now)
	db, budget, err := openMemberDB(&m.cfg, m.log, m.stalls.state)
	if err != nil {
		return fmt.Errorf("server: open database: %w", err)
	}
	m.db, m.budget = db, budget
	if m.logDB, err = openLogDB(&m.cfg, db, m.log, m.stalls.log); err != nil {
		return fmt.Errorf("server: open the raft log's database: %w", err)
	}
	m.removeBackupTmp()
	m.metrics = metrics.New()
	if m.logStore, err = storage.Open(m.logDB); err != nil {
		return err
	}
	m.observeStorage()
	if err := m.openStateMachine(); err != nil {
		return err
	}
	m.sampleDBSize()
	peers, join, err := m.loadIdentity()
	if err != nil {
		return err
	}
	ticks := int(m.cfg.ElectionTimeout / m.cfg.HeartbeatInterval)
	m.node, err = raftnode.New(raftnode.Config{
		ID: m.id, Peers: peers, Join: join,
		ElectionTicks: ticks, HeartbeatTicks: 1, TickInterval: m.cfg.HeartbeatInterval,
		SnapshotCount: m.cfg.SnapshotCount, SnapshotCatchUpEntries: m.cfg.SnapshotCatchUpEntries,
		Log: m.logStore, LogDir: logDBDir(&m.cfg), Applier: newTimedApplier(m.sm, m.cfg.WarningApplyDuration, m.log), SnapDir: filepath.Join(m.cfg.DataDir, "snap"),
		Logger: m.log,
	})
	if err != nil {
		return err
	}
	m.tr = transport.NewGRPC(transport.Config{LocalID: m.id, ClusterID: m.clusterID, Handler: m.node, Logger: m.log,
		TLS:        m.tls.peerDialTLS(),
		Resolver:   m.cfg.Resolver,
		Membership: m, Hasher: m, IsRemoved: m.sm.Members().IsRemoved, OnRemoved: m.removedFromCluster})
	m.registerGauges()
	m.registerLeaseMetrics()
	m.registerAuditMetrics()
	m.registerAuthMetrics()
	return nil
}

// loadIdentity reads the member's stored identity or, for a new data
// directory, derives it from the --initial-cluster flags (as etcd does) and
// returns the founding peers raft bootstraps with. A data directory made by
// `synod snapshot restore` has an identity and a membership but no raft log:
// raft bootstraps from that stored membership.
func (m *Member) loadIdentity() ([]raft.Peer, bool, error) {
	id, err := readIdentity(m.db)
	if err == nil {
		m.id, m.clusterID = id.memberID, id.clusterID
		peers, err := m.restoredPeers()
		if err != nil || peers != nil {
			m.log.Info("bootstrapping a new cluster from restored data", "member-id", fmt.Sprintf("%x", m.id))
			return peers, false, err
		}
		m.log.Info("restarting from existing data; --initial-cluster flags are ignored", "member-id", fmt.Sprintf("%x", m.id))
		return nil, false, m.maybeForceNewCluster()
	}
	if !errors.Is(err, errNoIdentity) {
		return nil, false, err
	}
	if err := m.discover(); err != nil {
		return nil, false, err
	}
	if m.cfg.InitialClusterState == "existing" {
		initial, err := m.cfg.initialMembers()
		if err != nil {
			return nil, false, err
		}
		return nil, true, m.join(initial)
	}
	founders, err := m.cfg.founders()
	if err != nil {
		return nil, false, err
	}
	m.id, m.clusterID = founders.self, founders.clusterID
	peers, err := raftPeers(founders.members)
	if err != nil {
		return nil, false, err
	}
	if err := writeIdentity(m.db, identity{memberID: m.id, clusterID: m.clusterID}); err != nil {
		return nil, false, err
	}
	return peers, false, nil
}

// restoredPeers returns the stored membership as raft peers if the raft log
// is empty (a restored data directory that never started), nil otherwise.
func (m *Member) restoredPeers() ([]raft.Peer, error) {
	last, err := m.logStore.LastIndex()
	if err != nil {
		return nil, err
	}
	snap, err := m.logStore.Snapshot()
	if err != nil {
		return nil, err
	}
	if last != 0 || snap.GetMetadata().GetIndex() != 0 {
		return nil, nil
	}
	return raftPeers(m.sm.Members().List())
}

// founding is the membership a new cluster starts with.
type founding struct {
	members   []*etcdserverpb.Member // ID, Name, PeerURLs
	self      uint64                 // this member's ID
	clusterID uint64
}

// founders computes the founding members and IDs from --initial-cluster and
// --initial-cluster-token exactly as etcd does.
func (c *Config) founders() (founding, error) {
	initial, err := c.initialMembers()
	if err != nil {
		return founding{}, err
	}
	var f founding
	var ids []uint64
	for _, im := range initial {
		mid := MemberID(im.PeerURLs, c.InitialClusterToken, nil)
		f.members = append(f.members, &etcdserverpb.Member{ID: mid, Name: im.Name, PeerURLs: im.PeerURLs})
		ids = append(ids, mid)
		if im.Name == c.Name {
			f.self = mid
		}
	}
	f.clusterID = ClusterID(ids)
	return f, nil
}

// raftPeers turns members into the peers raft bootstraps with (the context
// of each is the marshaled Member, which ApplyConfChange records).
func raftPeers(members []*etcdserverpb.Member) ([]raft.Peer, error) {
	var peers []raft.Peer
	for _, mem := range members {
		ctx, err := proto.Marshal(&etcdserverpb.Member{ID: mem.ID, Name: mem.Name, PeerURLs: mem.PeerURLs})
		if err != nil {
			return nil, err
		}
		peers = append(peers, raft.Peer{ID: mem.ID, Context: ctx})
	}
	return peers, nil
}

func (m *Member) listen() error {
	for _, u := range m.cfg.ListenClientURLs {
		ln, err := m.listenURL(u)
		if err != nil {
			return err
		}
		m.clientLns = append(m.clientLns, m.limitClient(ln))
		m.clientSec = append(m.clientSec, secureURL(u))
	}
	for _, u := range m.cfg.ListenPeerURLs {
		ln, err := m.listenURL(u)
		if err != nil {
			return err
		}
		if secureURL(u) {
			ln = secureListener(ln, m.tls.peer, "h2")
		}
		m.peerLns = append(m.peerLns, ln)
	}
	for _, u := range m.cfg.ListenMetricsURLs {
		ln, err := m.listenURL(u)
		if err != nil {
			return err
		}
		if secureURL(u) {
			ln = secureListener(ln, m.tls.client, "http/1.1")
		}
		m.metricLns = append(m.metricLns, ln)
	}
	if err := m.listenHTTP(); err != nil {
		return err
	}
	m.selfLn = newPipeListener()
	self, err := newSelfClient(m.selfLn, m.tracingDialOptions()...)
	if err != nil {
		return fmt.Errorf("server: client of self: %w", err)
	}
	m.self = self
	return nil
}

// Start serves clients and peers and starts the raft loop.
func (m *Member) Start() {
	m.syncPeers()
	m.bg.Add(1)
	go m.runEvery(dbSizeSampleInterval, m.sampleSpace)
	m.node.Start(m.tr)
	m.peerSrv = grpc.NewServer(append(transport.ServerOptions(), grpc.MaxRecvMsgSize(64<<20), grpc.Creds(tlsconfig.Terminated()))...)
	m.tr.Register(m.peerSrv)
	m.clientSrv = etcdapi.NewGRPCServer(m.backends(), etcdapi.Options{MaxRequestBytes: m.cfg.MaxRequestBytes, Logger: m.log,
		NoLeaderGrace: 3 * m.cfg.ElectionTimeout, Self: m.self, Metrics: m.metrics, Audit: m.audit,
		MaxConcurrentStreams: m.cfg.MaxConcurrentStreams,
		KeepaliveMinTime:     m.cfg.GRPCKeepAliveMinTime, KeepaliveInterval: m.cfg.GRPCKeepAliveInterval,
		KeepaliveTimeout: m.cfg.GRPCKeepAliveTimeout, SlowRequest: m.cfg.WarningUnaryRequestDuration,
		ServerOptions: append(m.tracingOptions(), grpc.Creds(tlsconfig.Terminated()))})
	if err := m.startWeb(); err != nil {
		m.log.Error("HTTP endpoints not served", "err", err)
	}
	for _, ln := range m.metricLns {
		m.serveHTTP(m.web.metrics, ln)
	}
	for _, ln := range m.peerLns {
		m.serve(m.peerSrv, ln)
	}
	m.bg.Add(2)
	sem := make(chan struct{}, leaseExpiryInFlight)
	go m.runEvery(leaseCheckInterval, func() { m.expireLeases(sem) })
	if m.cfg.CorruptCheckTime > 0 {
		m.bg.Add(1)
		go m.runEvery(m.cfg.CorruptCheckTime, m.corruptCheckTick)
	}
	if m.cfg.CompactHashCheck {
		m.bg.Add(1)
		go m.runEvery(m.cfg.CompactHashCheckTime, m.compactHashCheckTick)
	}
	m.startAutoCompaction()
	go func() {
		defer m.bg.Done()
		// Like etcd, serve clients only once this member's name and client
		// URLs are in the membership, so every member list a client can
		// see names them.
		if m.publish() {
			m.serve(m.clientSrv, m.selfLn)
			m.serveClients()
		}
	}()
	m.log.Info("member started", "id", fmt.Sprintf("%x", m.id), "cluster", fmt.Sprintf("%x", m.clusterID),
		"clients", m.cfg.AdvertiseClientURLs, "peers", m.cfg.InitialAdvertisePeerURLs)
}

func (m *Member) serve(s *grpc.Server, ln net.Listener) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := s.Serve(ln)
		select {
		case <-m.stopped:
			return // Stop closed the listener: not an error
		default:
		}
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			m.log.Error("serve stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// syncPeers points the transport at every other member in the membership.
// A member that finds itself removed (restarted after its removal, or
// restored from a snapshot taken after it) stops.
func (m *Member) syncPeers() {
	for _, mem := range append(m.sm.Members().List(), m.joinPeers...) {
		if mem.ID != m.id {
			m.tr.AddPeer(mem.ID, mem.PeerURLs)
		}
	}
	m.joinPeers = nil // only the first call, before raft runs, needs them
	if m.sm.Members().IsRemoved(m.id) {
		m.removedFromCluster()
	}
}

// publish records this member's name and client URLs in the membership
// through raft (etcd's ClusterMemberAttrSet), retrying until it succeeds.
// It reports false if the member stopped first.
func (m *Member) publish() bool {
	req := membership.AttrSetRequest(m.id, m.cfg.Name, m.cfg.AdvertiseClientURLs)
	for {
		if cur, ok := m.sm.Members().Get(m.id); ok && cur.Name == m.cfg.Name && equalStrings(cur.ClientURLs, m.cfg.AdvertiseClientURLs) {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := m.node.Propose(ctx, proto.Clone(req).(*etcdserverpb.InternalRaftRequest))
		cancel()
		if err == nil {
			continue
		}
		select {
		case <-m.stopped:
			return false
		case <-time.After(m.cfg.HeartbeatInterval * 5):
		}
	}
}

// Stop stops serving, ends the raft loop and closes the database. It is safe
// to call more than once.
func (m *Member) Stop() {
	m.stopOnce.Do(func() {
		close(m.stopped)
		if m.hub != nil {
			m.hub.Close() // watch streams end now, so clients move on
		}
		if m.self != nil {
			m.self.Close() // ends the Lock and Election calls in flight
		}
		m.stopWeb()
		if m.clientSrv != nil {
			stopGRPC(m.clientSrv)
		}
		m.node.Stop()
		if m.peerSrv != nil {
			// Peer streams are long-lived and carry nothing a client
			// waits for once raft has stopped: cut them off at once.
			m.peerSrv.Stop()
		}
		m.closeListeners()
		m.tr.Close()
		m.bg.Wait()
		m.stopTracing()
		m.flushOnStop()
		m.closeStorage()
		m.closeAudit()
	})
}

// stopGRPC drains in-flight RPCs briefly, then cuts the rest off.
func stopGRPC(s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.Stop()
	}
}

func (m *Member) closeListeners() {
	for _, ln := range append(append(append(m.clientLns, m.peerLns...), m.metricLns...), m.web.httpLns...) {
		ln.Close()
	}
	if m.selfLn != nil {
		m.selfLn.Close()
	}
}

func (m *Member) closeStorage() {
	if m.sm != nil {
		m.sm.Close()
	}
	for _, db := range []*pebble.DB{m.logDB, m.db} {
		if db == nil {
			continue
		}
		if err := db.Close(); err != nil {
			m.log.Error("close database", "err", err)
		}
	}
}

// Done is closed when the member's raft loop has ended: after Stop, or on a
// fatal error (see Err).
func (m *Member) Done() <-chan struct{} { return m.node.Done() }

// Err reports the fatal error that ended the raft loop, if any.
func (m *Member) Err() error { return m.node.Err() }

// RaftStats returns counters of raft events (snapshots, leader changes).
func (m *Member) RaftStats() raftnode.Stats { return m.node.Stats() }

// ID is the member's ID.
func (m *Member) ID() uint64 { return m.id }

// ClientAddrs returns the addresses the client listeners are bound to.
func (m *Member) ClientAddrs() []string {
	out := make([]string, len(m.clientLns))
	for i, ln := range m.clientLns {
		out[i] = ln.Addr().String()
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// runEvery calls fn every interval until the member stops. The caller
// has added the goroutine to m.bg.
func (m *Member) runEvery(interval time.Duration, fn func()) {
	defer m.bg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stopped:
			return
		case <-t.C:
			fn()
		}
	}
}
