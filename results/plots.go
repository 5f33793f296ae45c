package results

import (
	"bytes"
	"fmt"
	"image/color"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/nemesis"
)

// Figure is one plot, as inline SVG.
type Figure struct {
	Title string
	SVG   string
}

var (
	colOK      = color.RGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
	colFail    = color.RGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	colInfo    = color.RGBA{R: 0xef, G: 0x6c, B: 0x00, A: 0xff}
	colLost    = color.RGBA{R: 0xd5, G: 0x00, B: 0x00, A: 0xff}
	colUnseen  = color.RGBA{R: 0x75, G: 0x75, B: 0x75, A: 0xff}
	colFault   = color.NRGBA{R: 0xff, G: 0xa0, B: 0x00, A: 0x50} // not premultiplied: translucent orange
	colLatency = color.RGBA{R: 0x15, G: 0x65, B: 0xc0, A: 0xff}
)

// Figures draws the report's plots: sends over time and latency with fault intervals shaded, lost and unseen
// values over time, and an offset timeline of every partition with a log-side anomaly (at most maxTimelines).
func (r *Run) Figures() []Figure {
	v := r.Verdict
	end := v.Stats.DurationS
	bands := nemesis.Intervals(r.Faults, end)
	var out []Figure
	bucket := v.Series.BucketS
	if bucket <= 0 {
		bucket = 1
	}
	series := func(counts []int) plotter.XYs {
		xy := make(plotter.XYs, len(counts))
		for i, c := range counts {
			xy[i] = plotter.XY{X: float64(i) * bucket, Y: float64(c) / bucket}
		}
		return xy
	}
	if len(v.Series.SendsOK) > 0 {
		out = append(out, lines("Sends per second (faults shaded)", "sends/s", bands, []line{
			{"ok", series(v.Series.SendsOK), colOK}, {"fail", series(v.Series.SendsFail), colFail}, {"info", series(v.Series.SendsInfo), colInfo},
		}))
		lat := make(plotter.XYs, len(v.Series.LatencyMsP99))
		for i, l := range v.Series.LatencyMsP99 {
			lat[i] = plotter.XY{X: float64(i) * bucket, Y: l}
		}
		out = append(out, lines("Send latency p99 (faults shaded)", "ms", bands, []line{{"p99", lat, colLatency}}))
	}
	if r.Ops != nil {
		lost, unseen := lostAndUnseen(r.Ops, bucket)
		if len(lost) > 0 {
			out = append(out, lines("Values lost (acked, absent from the final read) and unseen (unacked, absent) by send time", "values", bands,
				[]line{{"lost", lost, colLost}, {"unseen", unseen, colUnseen}}))
		}
		for _, tp := range anomalousPartitions(v, maxTimelines) {
			if f, ok := offsetTimeline(r.Ops, tp, bands); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

const maxTimelines = 4

type line struct {
	name string
	xy   plotter.XYs
	col  color.Color
}

func lines(title, ylabel string, bands []nemesis.FaultInterval, ls []line) Figure {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	ymax := 1.0
	for _, l := range ls {
		for _, pt := range l.xy {
			ymax = max(ymax, pt.Y)
		}
	}
	shade(p, bands, 0, ymax)
	for _, l := range ls {
		if len(l.xy) == 0 {
			continue
		}
		pl, err := plotter.NewLine(l.xy)
		if err != nil {
			continue
		}
		pl.Color = l.col
		pl.Width = vg.Points(1.2)
		p.Add(pl)
		p.Legend.Add(l.name, pl)
	}
	return Figure{Title: title, SVG: render(p)}
}

// shade draws each fault interval as a translucent band from ylo to yhi.
func shade(p *plot.Plot, bands []nemesis.FaultInterval, ylo, yhi float64) {
	for _, b := range bands {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: b.StartS, Y: ylo}, {X: b.EndS, Y: ylo}, {X: b.EndS, Y: yhi}, {X: b.StartS, Y: yhi}})
		if err != nil {
			continue
		}
		poly.Color = colFault
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
}

func render(p *plot.Plot) string {
	c := vgsvg.New(7*vg.Inch, 2.6*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return ""
	}
	return buf.String()
}

// lostAndUnseen buckets sends by invoke time: acked values absent from their partition's final read (lost), and
// unacked ones absent too (unseen). Partitions without a final read are left out: nothing can be said of them.
func lostAndUnseen(ops []history.Op, bucket float64) (lost, unseen plotter.XYs) {
	final := map[history.TopicPartition]map[string]bool{}
	for i := range ops {
		o := &ops[i]
		if o.F != history.FinalRead || o.Type != history.OK {
			continue
		}
		for _, rec := range o.Records {
			m := final[rec.TP()]
			if m == nil {
				m = map[string]bool{}
				final[rec.TP()] = m
			}
			m[rec.Value] = true
		}
		// An empty partition's final read names it in Partitions.
		for _, p := range o.Partitions {
			if final[p.TP()] == nil {
				final[p.TP()] = map[string]bool{}
			}
		}
	}
	if len(final) == 0 {
		return nil, nil
	}
	invoked := map[string]int64{}
	var lostN, unseenN []int
	add := func(xs *[]int, t int64) {
		i := int(float64(t) / 1e9 / bucket)
		for len(*xs) <= i {
			*xs = append(*xs, 0)
		}
		(*xs)[i]++
	}
	for i := range ops {
		o := &ops[i]
		if o.F != history.Send {
			continue
		}
		if o.Type == history.Invoke {
			invoked[o.Value] = o.Time
			continue
		}
		present, judged := final[history.TopicPartition{Topic: o.Topic, Partition: o.Partition}]
		if !judged || present[o.Value] {
			continue
		}
		t, ok := invoked[o.Value]
		if !ok {
			t = o.Time
		}
		if o.Type == history.OK {
			add(&lostN, t)
		} else {
			add(&unseenN, t)
		}
	}
	n := max(len(lostN), len(unseenN))
	for len(lostN) < n {
		lostN = append(lostN, 0)
	}
	for len(unseenN) < n {
		unseenN = append(unseenN, 0)
	}
	for i := 0; i < n; i++ {
		lost = append(lost, plotter.XY{X: float64(i) * bucket, Y: float64(lostN[i])})
		unseen = append(unseen, plotter.XY{X: float64(i) * bucket, Y: float64(unseenN[i])})
	}
	return lost, unseen
}

// anomalousPartitions lists partitions named by log-side anomaly examples, most examples first.
func anomalousPartitions(v *checker.Verdict, limit int) []history.TopicPartition {
	count := map[history.TopicPartition]int{}
	for _, name := range []string{checker.LostWrite, checker.Duplicate, checker.InconsistentOffset, checker.Reorder, checker.Phantom} {
		if a := v.Anomalies[name]; a != nil {
			for _, e := range a.Examples {
				count[history.TopicPartition{Topic: e.Topic, Partition: e.Partition}]++
			}
		}
	}
	tps := make([]history.TopicPartition, 0, len(count))
	for tp := range count {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if count[tps[i]] != count[tps[j]] {
			return count[tps[i]] > count[tps[j]]
		}
		return tps[i].String() < tps[j].String()
	})
	if len(tps) > limit {
		tps = tps[:limit]
	}
	return tps
}

// offsetTimeline plots the offsets acknowledged to producers over time for one partition, marking those the
// final read does not hold at that offset (the value is missing or another value sits there).
func offsetTimeline(ops []history.Op, tp history.TopicPartition, bands []nemesis.FaultInterval) (Figure, bool) {
	atOffset := map[int64]string{}
	for i := range ops {
		o := &ops[i]
		if o.F == history.FinalRead && o.Type == history.OK {
			for _, rec := range o.Records {
				if rec.TP() == tp {
					atOffset[rec.Offset] = rec.Value
				}
			}
		}
	}
	var kept, gone plotter.XYs
	ymax := 1.0
	for i := range ops {
		o := &ops[i]
		if o.F != history.Send || o.Type != history.OK || o.Topic != tp.Topic || o.Partition != tp.Partition || o.Offset < 0 {
			continue
		}
		pt := plotter.XY{X: float64(o.Time) / 1e9, Y: float64(o.Offset)}
		ymax = max(ymax, pt.Y)
		if atOffset[o.Offset] == o.Value {
			kept = append(kept, pt)
		} else {
			gone = append(gone, pt)
		}
	}
	if len(kept)+len(gone) == 0 {
		return Figure{}, false
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: acked offsets over time (red: not in the final read at that offset)", tp)
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "offset"
	p.Legend.Top = true
	shade(p, bands, 0, ymax)
	for _, s := range []struct {
		name string
		xy   plotter.XYs
		col  color.Color
	}{{"kept", kept, colOK}, {"lost or replaced", gone, colLost}} {
		if len(s.xy) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xy)
		if err != nil {
			continue
		}
		sc.GlyphStyle.Color = s.col
		sc.GlyphStyle.Radius = vg.Points(1.2)
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	return Figure{Title: p.Title.Text, SVG: render(p)}, true
}
