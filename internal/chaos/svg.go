package chaos

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// SVG draws a run: acknowledged and failed writes per second above, write
// latency (p50, p99, max per second, log scale) below, every fault's window
// shaded across both and labelled, and outages (of writes, and of topic
// creations on a cluster) as bars under the throughput. Plain SVG written here, so no plotting tool is needed.
func SVG(h History, av Availability) string {
	const (
		W, left, right = 1100.0, 70.0, 20.0
		top1, h1       = 50.0, 200.0 // throughput panel
		top2, h2       = 300.0, 200.0
		H              = 560.0
	)
	plotW := W - left - right
	end := max(h.End, time.Second)
	x := func(t Dur) float64 { return left + plotW*float64(t)/float64(end) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	unexpected := 0
	for _, a := range Check(h) {
		if !a.Expected {
			unexpected++
		}
	}
	verdict := "PASS"
	if unexpected > 0 {
		verdict = fmt.Sprintf("FAIL: %d unexpected anomalies", unexpected)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">Vltava fault battery, seed %d, %d node(s): %s</text>`+"\n", left, h.Seed, h.Nodes, esc(verdict))

	// Fault windows across both panels, labelled above the first.
	for _, f := range h.Faults {
		x0, x1 := x(f.Start), x(f.End)
		fmt.Fprintf(&b, `<rect class="fault" x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" fill-opacity="0.25"><title>%s</title></rect>`+"\n",
			x0, top1, math.Max(x1-x0, 1), top2+h2-top1, faultColor(f.Kind), esc(fmt.Sprintf("%s nodes %v %v-%v %s %s", f.Kind, f.Nodes, f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond), f.Detail, f.Err)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="9" fill="%s">%s</text>`+"\n", x0, top1-4, faultColor(f.Kind), esc(string(f.Kind)))
	}

	// Throughput.
	maxOps := 1
	for _, bk := range av.Buckets {
		maxOps = max(maxOps, bk.OK, bk.Failed, bk.Polled)
	}
	yOps := func(n int) float64 { return top1 + h1 - h1*float64(n)/float64(maxOps) }
	axes(&b, left, top1, plotW, h1, end, "records/s")
	for _, v := range niceTicks(float64(maxOps), 4) {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, yOps(int(v))+4, v)
	}
	var okPts, failPts, pollPts []string
	for _, bk := range av.Buckets {
		mid := bk.Start + time.Second/2
		okPts = append(okPts, fmt.Sprintf("%.1f,%.1f", x(mid), yOps(bk.OK)))
		failPts = append(failPts, fmt.Sprintf("%.1f,%.1f", x(mid), yOps(bk.Failed)))
		pollPts = append(pollPts, fmt.Sprintf("%.1f,%.1f", x(mid), yOps(bk.Polled)))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#2ca02c" stroke-width="1" stroke-dasharray="4 2" points="%s"/>`+"\n", strings.Join(pollPts, " "))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(okPts, " "))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#d62728" stroke-width="1" points="%s"/>`+"\n", strings.Join(failPts, " "))
	for _, o := range av.Outages {
		fmt.Fprintf(&b, `<rect class="outage" x="%.1f" y="%.0f" width="%.1f" height="5" fill="black"><title>outage %v</title></rect>`+"\n",
			x(o.Start), top1+h1+2, math.Max(x(o.End)-x(o.Start), 1), o.Len().Round(time.Millisecond))
	}
	colors, names := []string{"#1f77b4", "#d62728", "#2ca02c", "black"}, []string{"acknowledged", "failed", "polled", "outage"}
	if len(h.MetaOps) > 0 {
		for _, o := range av.MetaOutages {
			fmt.Fprintf(&b, `<rect class="meta-outage" x="%.1f" y="%.0f" width="%.1f" height="5" fill="#637939"><title>topic-creation outage %v</title></rect>`+"\n",
				x(o.Start), top1+h1+9, math.Max(x(o.End)-x(o.Start), 1), o.Len().Round(time.Millisecond))
		}
		colors, names = append(colors, "#637939"), append(names, "topic-creation outage")
	}
	legend(&b, left+plotW-520, top1+12, colors, names)

	// Latency, log scale from 1 ms to the slowest write.
	maxLat := 10 * time.Millisecond
	for _, bk := range av.Buckets {
		maxLat = max(maxLat, bk.Max)
	}
	lo, hi := math.Log10(1), math.Log10(float64(maxLat)/float64(time.Millisecond))
	yLat := func(d Dur) float64 {
		ms := math.Max(float64(d)/float64(time.Millisecond), 1)
		return top2 + h2 - h2*(math.Log10(ms)-lo)/(hi-lo)
	}
	axes(&b, left, top2, plotW, h2, end, "write latency (log)")
	for ms := 1.0; ms <= float64(maxLat)/float64(time.Millisecond); ms *= 10 {
		d := Dur(ms * float64(time.Millisecond))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%v</text>`+"\n", left-6, yLat(d)+4, d)
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+plotW, yLat(d), yLat(d))
	}
	for _, s := range []struct {
		color string
		get   func(Bucket) Dur
	}{{"#2ca02c", func(b Bucket) Dur { return b.P50 }}, {"#ff7f0e", func(b Bucket) Dur { return b.P99 }}, {"#7f7f7f", func(b Bucket) Dur { return b.Max }}} {
		var pts []string
		for _, bk := range av.Buckets {
			if bk.OK == 0 {
				if len(pts) > 1 {
					fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
				}
				pts = pts[:0]
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(bk.Start+time.Second/2), yLat(s.get(bk))))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		}
	}
	legend(&b, left+plotW-300, top2+12, []string{"#2ca02c", "#ff7f0e", "#7f7f7f"}, []string{"p50", "p99", "max"})
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">seconds since the run started</text>`+"\n", left+plotW/2, top2+h2+35)
	b.WriteString("</svg>\n")
	return b.String()
}

// axes draws a panel's frame, its name and the time ticks under it.
func axes(b *strings.Builder, left, top, w, h float64, end Dur, name string) {
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", left, top, w, h)
	fmt.Fprintf(b, `<text x="15" y="%.0f" transform="rotate(-90 15 %.0f)" text-anchor="middle">%s</text>`+"\n", top+h/2, top+h/2, esc(name))
	secs := end.Seconds()
	for _, s := range niceTicks(secs, 10) {
		px := left + w*s/secs
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="black"/>`+"\n", px, px, top+h, top+h+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%g</text>`+"\n", px, top+h+16, s)
	}
}

func legend(b *strings.Builder, x, y float64, colors, names []string) {
	for i := range colors {
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="12" height="4" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			x+float64(i)*100, y-4, colors[i], x+float64(i)*100+16, y, esc(names[i]))
	}
}

// niceTicks returns up to about n round values from 0 to top.
func niceTicks(top float64, n int) []float64 {
	if top <= 0 {
		return []float64{0}
	}
	raw := top / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := 0.0; v <= top+step/1e6; v += step {
		out = append(out, v)
	}
	return out
}

func faultColor(k FaultKind) string {
	switch k {
	case Kill:
		return "#d62728"
	case Pause:
		return "#9467bd"
	case DiskFull:
		return "#8c564b"
	case TornTail, TornAcked:
		return "#e377c2"
	case Partition:
		return "#17becf"
	default:
		return "#bcbd22"
	}
}

func esc(s string) string { return html.EscapeString(s) }
