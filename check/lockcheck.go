package check

import (
	"fmt"
	"sort"
)

// lockCheck is the judgement of a lock history.
type lockCheck struct {
	applied, refused, unknown int
	// anomalies break fencing: they fail the check.
	anomalies []string
	// overlaps are unfenced critical sections that overlapped: what a lock
	// without fencing allows (a holder paused past its lease). Reported,
	// never an anomaly.
	overlaps []string
}

// checkLockHistory judges the holds of a lock. final is the fenced
// resource's token after the run (0 if it was never written).
//
// Fenced holders never overlap: ordered by revision, the applied fenced
// writes carry increasing tokens, each replaced a smaller token (its
// prev_kv, which also covers writes whose outcome the client never learned),
// no two holds share a token or a revision, and the final value is at least
// the largest acknowledged token. Holders whose beliefs overlapped in time
// are counted as unfenced overlaps.
func checkLockHistory(holds []lockHold, final int64) lockCheck {
	var lc lockCheck
	var fenced []lockHold
	byToken := map[int64]string{}
	for _, h := range holds {
		if other, dup := byToken[h.Token]; dup {
			lc.anomalies = append(lc.anomalies, fmt.Sprintf("%s and %s were both granted the lock with token %d", other, h.Client, h.Token))
		}
		byToken[h.Token] = h.Client
		switch h.Fence {
		case fenceApplied:
			lc.applied++
			fenced = append(fenced, h)
		case fenceRefused:
			lc.refused++
		default:
			lc.unknown++
		}
	}
	sort.Slice(fenced, func(i, j int) bool { return fenced[i].FenceRev < fenced[j].FenceRev })
	var maxToken int64
	for i, h := range fenced {
		if h.FencePrev >= h.Token {
			lc.anomalies = append(lc.anomalies, fmt.Sprintf("fenced write of %s (token %d) at revision %d replaced token %d: an older holder wrote after a newer one",
				h.Client, h.Token, h.FenceRev, h.FencePrev))
		}
		if i > 0 {
			p := fenced[i-1]
			switch {
			case p.FenceRev == h.FenceRev:
				lc.anomalies = append(lc.anomalies, fmt.Sprintf("fenced writes of %s and %s both at revision %d", p.Client, h.Client, h.FenceRev))
			case p.Token > h.Token:
				lc.anomalies = append(lc.anomalies, fmt.Sprintf("fenced write of %s (token %d) at revision %d took effect after %s's (token %d) at revision %d",
					h.Client, h.Token, h.FenceRev, p.Client, p.Token, p.FenceRev))
			}
		}
		maxToken = max(maxToken, h.Token)
	}
	if final < maxToken {
		lc.anomalies = append(lc.anomalies, fmt.Sprintf("the fenced resource ends with token %d, below the acknowledged token %d", final, maxToken))
	}
	lc.overlaps = unfencedOverlaps(holds)
	return lc
}

// unfencedOverlaps lists, for each hold that still believed it held the
// lock when a later holder acquired it, one note: their [Acquired, Released]
// intervals (client clock) intersect. A holder records Released before it
// asks to unlock and a successor's Lock returns only after the unlock or
// the lease expiry took effect, so a normal hand-off never counts. When the
// unfenced writes of the stale holder and its first successor are known,
// the note says whether they interleaved in the resource.
func unfencedOverlaps(holds []lockHold) []string {
	sorted := append([]lockHold(nil), holds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Acquired < sorted[j].Acquired })
	var out []string
	for i, a := range sorted {
		var later []lockHold
		for _, b := range sorted[i+1:] {
			if b.Acquired > a.Released {
				break
			}
			later = append(later, b)
		}
		if len(later) == 0 {
			continue
		}
		b := later[0]
		note := fmt.Sprintf("unfenced: %s (token %d) believed it held the lock from %.3fs to %.3fs, while %d later holder(s) acquired it, first %s (token %d) at %.3fs",
			a.Client, a.Token, float64(a.Acquired)/1e9, float64(a.Released)/1e9, len(later), b.Client, b.Token, float64(b.Acquired)/1e9)
		if a.Enter > 0 && a.Exit > 0 && b.Enter > 0 && b.Exit > 0 && a.Exit >= b.Enter && b.Exit >= a.Enter {
			note += fmt.Sprintf("; their unfenced writes interleaved (revisions %d–%d and %d–%d)", a.Enter, a.Exit, b.Enter, b.Exit)
		}
		out = append(out, note)
	}
	return out
}
