package replica

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// world is the state one scenario file drives: at most one Leader, and named simulated logs for the
// divergence scenarios. Time is an offset from base, set by t= arguments and kept between commands.
type world struct {
	leader *Leader
	base   time.Time
	now    time.Time
	logs   map[string]*simLog
}

func newWorld() *world {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return &world{base: base, now: base, logs: map[string]*simLog{}}
}

// run executes one command line and returns its output.
func (w *world) run(cmd string) (string, error) {
	a := parseArgs(cmd)
	if a.has("t") {
		w.now = w.base.Add(a.dur("t"))
	}
	out, err := w.dispatch(a)
	if err != nil {
		return "", err
	}
	if err := a.done(); err != nil {
		return "", err
	}
	return out, nil
}

func (w *world) dispatch(a *args) (string, error) {
	if a.name != "leader" && isLeaderCommand(a.name) && w.leader == nil {
		return "", fmt.Errorf("%s needs a leader: start with a leader command", a.name)
	}
	switch a.name {
	case "leader":
		return w.cmdLeader(a)
	case "append":
		res, err := w.leader.OnAppend(a.i64("leo"), w.now)
		return w.leaderOutput(res, err)
	case "fetch":
		res, err := w.leader.OnFollowerFetch(a.i32("replica"), a.i64("offset"), w.now)
		return w.leaderOutput(res, err)
	case "tick":
		return w.leaderOutput(w.leader.Tick(w.now), nil)
	case "alter-result":
		return w.cmdAlterResult(a)
	case "change":
		res, err := w.leader.OnPartitionChange(Assignment{Leader: int32(a.i64Or("leader", int64(w.leader.cfg.Self))),
			LeaderEpoch: a.i32("epoch"), PartitionEpoch: a.i32("pe"), Replicas: a.ids("replicas"), ISR: a.ids("isr")},
			a.i64("leo"), w.now)
		return w.leaderOutput(res, err)
	case "min-isr":
		res, err := w.leader.SetMinInsyncReplicas(int(a.i64("n")), w.now)
		return w.leaderOutput(res, err)
	case "eligible":
		w.leader.SetEligible(a.i32("replica"), a.str("ok") == "true")
		return w.leaderState(), nil
	case "can-accept-acks-all":
		if w.leader.CanAcceptAcksAll() {
			return "true", nil
		}
		return "false (NOT_ENOUGH_REPLICAS)", nil
	case "acks-all":
		done, err := w.leader.AckedAll(a.i64("offset"))
		s := fmt.Sprintf("acked=%v", done)
		if err != nil {
			s += " err=" + kerrName(err)
		}
		return s, nil
	case "state":
		return w.leaderState(), nil
	}
	return w.dispatchLog(a)
}

func isLeaderCommand(name string) bool {
	switch name {
	case "leader", "append", "fetch", "tick", "alter-result", "change", "min-isr", "eligible",
		"can-accept-acks-all", "acks-all", "state":
		return true
	}
	return false
}

// cmdLeader: leader self= replicas= isr= epoch= pe= start= leo= hw= min-isr= lag= [t=]
func (w *world) cmdLeader(a *args) (string, error) {
	cfg := Config{Self: a.i32("self"), ReplicaLagTimeMax: a.dur("lag"), MinInsyncReplicas: int(a.i64("min-isr"))}
	as := Assignment{Leader: cfg.Self, LeaderEpoch: a.i32("epoch"), PartitionEpoch: a.i32("pe"),
		Replicas: a.ids("replicas"), ISR: a.ids("isr")}
	start, leo, hw := a.i64("start"), a.i64("leo"), a.i64("hw")
	if a.err != nil {
		return "", a.err
	}
	l, err := NewLeader(cfg, as, start, leo, hw, w.now)
	if err != nil {
		return "error: " + err.Error(), nil
	}
	w.leader = l
	return w.leaderState(), nil
}

// cmdAlterResult: alter-result [seq=N] (ok isr= pe= [epoch=] | error=NAME)
func (w *world) cmdAlterResult(a *args) (string, error) {
	var seq uint64
	if p := w.leader.Pending(); p != nil {
		seq = p.Seq
	}
	if a.has("seq") {
		e, n, ok := strings.Cut(a.str("seq"), ".")
		epoch, err1 := strconv.ParseUint(e, 10, 32)
		count, err2 := strconv.ParseUint(n, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return "", fmt.Errorf("seq=%q: want EPOCH.COUNTER", a.str("seq"))
		}
		seq = epoch<<32 | count
	}
	var r AlterResult
	if a.has("ok") {
		r = AlterResult{LeaderEpoch: int32(a.i64Or("epoch", int64(w.leader.LeaderEpoch()))), PartitionEpoch: a.i32("pe"), ISR: a.ids("isr")}
	} else {
		code, err := kerrCode(a.str("error"))
		if err != nil {
			return "", err
		}
		r.ErrorCode = code
	}
	res, outcome := w.leader.OnAlterPartitionResult(seq, r, w.now)
	out, err := w.leaderOutput(res, nil)
	return "outcome=" + outcome.String() + "\n" + out, err
}

// leaderOutput prints a Result and the ISR state after it.
func (w *world) leaderOutput(res Result, err error) (string, error) {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	fmt.Fprintf(&b, "hw=%d", res.HighWatermark)
	if res.HWAdvanced {
		b.WriteString(" advanced")
	}
	if p := res.Propose; p != nil {
		fmt.Fprintf(&b, "\npropose %s %s %s -> isr=%s leader-epoch=%d pe=%d", seqString(p.Seq), p.Kind, ids(p.Changed), ids(p.ISR), p.LeaderEpoch, p.PartitionEpoch)
	}
	fmt.Fprintf(&b, "\n%s", w.isrLine())
	return b.String(), nil
}

func (w *world) isrLine() string {
	l := w.leader
	pending := "none"
	if p := l.Pending(); p != nil {
		pending = seqString(p.Seq)
	}
	return fmt.Sprintf("isr=%s maximal=%s pe=%d pending=%s", ids(l.ISR()), ids(l.MaximalISR()), l.PartitionEpoch(), pending)
}

func (w *world) leaderState() string {
	l := w.leader
	var b strings.Builder
	fmt.Fprintf(&b, "leader=%d epoch=%d epoch-start=%d leo=%d hw=%d %s", l.cfg.Self, l.LeaderEpoch(), l.EpochStartOffset(),
		l.LogEndOffset(), l.HighWatermark(), w.isrLine())
	for _, f := range l.Followers() {
		fmt.Fprintf(&b, "\n  replica %d: leo=%d last-fetch=%s caught-up=%s", f.ID, f.LogEndOffset, w.ago(f.LastFetch), w.ago(f.LastCaughtUp))
		if f.InISR {
			b.WriteString(" in-isr")
		}
		if !f.Eligible {
			b.WriteString(" ineligible")
		}
	}
	return b.String()
}

// seqString renders a proposal sequence number as #leaderEpoch.counter.
func seqString(seq uint64) string { return fmt.Sprintf("#%d.%d", seq>>32, seq&(1<<32-1)) }

// ago renders a time as its offset from the scenario's base, or "never".
func (w *world) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(w.base).String()
}

func ids(s []int32) string {
	parts := make([]string, len(s))
	for i, id := range s {
		parts[i] = strconv.Itoa(int(id))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func kerrCode(name string) (int16, error) {
	for code := int16(-1); code < 200; code++ {
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e.Message == name {
			return code, nil
		}
	}
	return 0, fmt.Errorf("unknown Kafka error name %q", name)
}

func kerrName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// simLog is a replica's log reduced to what replication compares: the leader epoch of each offset's record
// (two records at one offset are the same record iff their epochs match, since one epoch has one leader), the
// epoch cache kept with Kafka's rules, and a high watermark.
type simLog struct {
	recs   []int32
	epochs Epochs
	hw     int64
}

func (s *simLog) leo() int64 { return int64(len(s.recs)) }

func (s *simLog) view() LogView { return LogView{Epochs: s.epochs, EndOffset: s.leo()} }

// appendRecord appends one record written in epoch, updating the cache as Kafka's appends do.
func (s *simLog) appendRecord(epoch int32) {
	s.epochs = s.epochs.Assign(epoch, s.leo())
	s.recs = append(s.recs, epoch)
}

// truncateTo cuts the log as Kafka's UnifiedLog.truncateTo, epoch cache included.
func (s *simLog) truncateTo(off int64) {
	if off < s.leo() {
		s.recs = s.recs[:off]
	}
	s.epochs = s.epochs.TruncateFromEnd(min(off, s.leo()))
	s.hw = min(s.hw, s.leo())
}

func (s *simLog) String() string {
	var runs []string
	for i := 0; i < len(s.recs); {
		j := i
		for j < len(s.recs) && s.recs[j] == s.recs[i] {
			j++
		}
		runs = append(runs, fmt.Sprintf("%dx%d", s.recs[i], j-i))
		i = j
	}
	return fmt.Sprintf("leo=%d hw=%d epochs=%s records=%s", s.leo(), s.hw, s.epochs, strings.Join(runs, ","))
}

// commonPrefix is how many leading records two logs share: what a correct truncation must keep.
func commonPrefix(a, b []int32) int64 {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return int64(n)
}

func (w *world) log(a *args, key string) (*simLog, string, error) {
	name := a.str(key)
	s, ok := w.logs[name]
	if !ok && a.err == nil {
		return nil, "", fmt.Errorf("no log named %q", name)
	}
	return s, name, a.err
}

func (w *world) dispatchLog(a *args) (string, error) {
	switch a.name {
	case "log":
		return w.cmdLog(a)
	case "show":
		s, name, err := w.log(a, "name")
		if err != nil {
			return "", err
		}
		return name + ": " + s.String(), nil
	case "write":
		s, name, err := w.log(a, "name")
		if err != nil {
			return "", err
		}
		latest, ok := s.epochs.Latest()
		if !ok {
			return "", fmt.Errorf("log %s has no epoch to write in", name)
		}
		for range a.i64("n") {
			s.appendRecord(latest.Epoch)
		}
		return name + ": " + s.String(), nil
	case "elect":
		s, name, err := w.log(a, "name")
		if err != nil {
			return "", err
		}
		s.epochs = s.epochs.Assign(a.i32("epoch"), s.leo())
		return name + ": " + s.String(), nil
	case "check-fetch":
		s, _, err := w.log(a, "leader")
		if err != nil {
			return "", err
		}
		v := s.view()
		v.StartOffset = a.i64Or("start", 0)
		return fetchCheckString(CheckFetch(v, a.i64("offset"), a.i32("epoch"))), nil
	case "end-offset-for":
		s, _, err := w.log(a, "name")
		if err != nil {
			return "", err
		}
		e := EndOffsetForLeaderEpoch(s.view(), a.i32("epoch"))
		return fmt.Sprintf("epoch=%d end-offset=%d", e.Epoch, e.EndOffset), nil
	case "truncation":
		s, _, err := w.log(a, "name")
		if err != nil {
			return "", err
		}
		tr := TruncationFor(s.view(), EpochEndOffset{Epoch: a.i32("epoch"), EndOffset: a.i64("end")})
		return fmt.Sprintf("truncate-to=%d complete=%v", tr.Offset, tr.Complete), nil
	case "replicate":
		return w.cmdReplicate(a)
	case "out-of-range":
		act := HandleOutOfRange(a.i64("own-end"), a.i64("leader-start"), a.i64("leader-end"))
		return fmt.Sprintf("truncate-to=%d start-at=%d fetch-offset=%d", act.TruncateTo, act.StartAt, act.FetchOffset), nil
	}
	return "", fmt.Errorf("unknown command %q", a.name)
}

// cmdLog: log name= records=EPOCHxCOUNT,... [assign=EPOCH] [hw=N]
func (w *world) cmdLog(a *args) (string, error) {
	name := a.str("name")
	s := &simLog{}
	if spec := a.str("records"); spec != "" {
		for _, run := range strings.Split(spec, ",") {
			e, n, ok := strings.Cut(run, "x")
			epoch, err1 := strconv.ParseInt(e, 10, 32)
			count, err2 := strconv.Atoi(n)
			if !ok || err1 != nil || err2 != nil || count < 0 {
				return "", fmt.Errorf("records run %q: want EPOCHxCOUNT", run)
			}
			for range count {
				s.appendRecord(int32(epoch))
			}
		}
	}
	if a.has("assign") {
		s.epochs = s.epochs.Assign(a.i32("assign"), s.leo())
	}
	s.hw = a.i64Or("hw", 0)
	if err := s.epochs.Validate(); err != nil {
		return "", err
	}
	w.logs[name] = s
	return name + ": " + s.String(), a.err
}

// cmdReplicate: replicate leader= follower= [mode=fetch|ofle]. It runs the follower's truncation protocol
// against the leader's log until the follower may fetch, copies the rest of the leader's log, and reports
// whether the lowest truncation point was exactly the logs' common prefix.
func (w *world) cmdReplicate(a *args) (string, error) {
	ld, _, err := w.log(a, "leader")
	if err != nil {
		return "", err
	}
	fl, fname, err := w.log(a, "follower")
	if err != nil {
		return "", err
	}
	mode := "fetch"
	if a.has("mode") {
		mode = a.str("mode")
	}
	var steps []string
	switch mode {
	case "fetch":
		steps, err = replicateByFetch(ld, fl)
	case "ofle":
		steps, err = replicateByOffsetForLeaderEpoch(ld, fl)
	default:
		err = fmt.Errorf("mode %q: want fetch or ofle", mode)
	}
	if err != nil {
		return "", err
	}
	steps = append(steps, fname+": "+fl.String())
	return strings.Join(steps, "\n"), nil
}

// maxTruncationRounds bounds the protocol loop; every round strictly shortens the follower's log or ends.
const maxTruncationRounds = 64

// replicateByFetch drives Fetch v12+: each fetch carries the follower's log end and latest epoch; a
// DivergingEpoch answer makes it truncate and fetch again.
func replicateByFetch(ld, fl *simLog) ([]string, error) {
	common, lowest := commonPrefix(ld.recs, fl.recs), fl.leo()
	var steps []string
	for range maxTruncationRounds {
		off, last := fl.leo(), fl.epochs.LatestEpoch()
		chk := CheckFetch(ld.view(), off, last)
		step := fmt.Sprintf("fetch offset=%d last-epoch=%d -> %s", off, last, fetchCheckString(chk))
		switch chk.Outcome {
		case FetchDiverging:
			tr := TruncationFor(fl.view(), chk.Diverging)
			fl.truncateTo(tr.Offset)
			lowest = min(lowest, tr.Offset)
			steps = append(steps, fmt.Sprintf("%s; truncate to %d complete=%v", step, tr.Offset, tr.Complete))
		case FetchOutOfRange:
			act := HandleOutOfRange(off, 0, ld.leo())
			if act.TruncateTo >= 0 {
				fl.truncateTo(act.TruncateTo)
				lowest = min(lowest, act.TruncateTo)
			}
			steps = append(steps, fmt.Sprintf("%s; truncate-to=%d fetch-offset=%d", step, act.TruncateTo, act.FetchOffset))
		case FetchOK:
			n := copyFrom(ld, fl)
			steps = append(steps, fmt.Sprintf("%s; copied %d", step, n))
			steps = append(steps, fmt.Sprintf("common-prefix=%d lowest-truncation=%d exact=%v consistent=%v",
				common, lowest, lowest == common, slices.Equal(ld.recs, fl.recs)))
			return steps, nil
		}
	}
	return nil, fmt.Errorf("no agreement after %d rounds:\n%s", maxTruncationRounds, strings.Join(steps, "\n"))
}

// replicateByOffsetForLeaderEpoch drives the pre-v12 protocol: ask the leader where the latest local epoch
// ends, truncate, repeat until complete, then fetch without a last fetched epoch.
func replicateByOffsetForLeaderEpoch(ld, fl *simLog) ([]string, error) {
	common, lowest := commonPrefix(ld.recs, fl.recs), fl.leo()
	var steps []string
	for range maxTruncationRounds {
		req := fl.epochs.LatestEpoch()
		if req == UndefinedEpoch {
			break
		}
		ans := EndOffsetForLeaderEpoch(ld.view(), req)
		tr := TruncationFor(fl.view(), ans)
		fl.truncateTo(tr.Offset)
		lowest = min(lowest, tr.Offset)
		steps = append(steps, fmt.Sprintf("offset-for-leader-epoch epoch=%d -> epoch=%d end-offset=%d; truncate to %d complete=%v",
			req, ans.Epoch, ans.EndOffset, tr.Offset, tr.Complete))
		if tr.Complete {
			break
		}
	}
	chk := CheckFetch(ld.view(), fl.leo(), UndefinedEpoch)
	if chk.Outcome != FetchOK {
		return nil, fmt.Errorf("fetch at %d after truncation: %s", fl.leo(), fetchCheckString(chk))
	}
	off := fl.leo()
	n := copyFrom(ld, fl)
	steps = append(steps, fmt.Sprintf("fetch offset=%d -> ok; copied %d", off, n))
	steps = append(steps, fmt.Sprintf("common-prefix=%d lowest-truncation=%d exact=%v consistent=%v",
		common, lowest, lowest == common, slices.Equal(ld.recs, fl.recs)))
	return steps, nil
}

// copyFrom appends the leader's records from the follower's end, as follower appends, and takes the leader's
// high watermark bounded by the follower's log.
func copyFrom(ld, fl *simLog) int {
	n := 0
	for off := fl.leo(); off < ld.leo(); off++ {
		fl.appendRecord(ld.recs[off])
		n++
	}
	fl.hw = FollowerHighWatermark(ld.hw, fl.view())
	return n
}

func fetchCheckString(c FetchCheck) string {
	switch c.Outcome {
	case FetchOK:
		return "ok"
	case FetchDiverging:
		return fmt.Sprintf("diverging epoch=%d end-offset=%d", c.Diverging.Epoch, c.Diverging.EndOffset)
	case FetchOutOfRange:
		return "out-of-range"
	}
	return fmt.Sprintf("FetchOutcome(%d)", int(c.Outcome))
}
