package bench

import (
	"math/bits"
	"time"
)

// Hist is a latency histogram with about 1.5% resolution: values below 128
// ns are exact, larger ones fall into 64 buckets per power of two. Adding a
// value costs a few instructions and never allocates, so subscribers record
// every message.
type Hist struct {
	counts [58 * 64]uint64
	n      uint64
	max    int64
}

func histIndex(v int64) int {
	if v < 128 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 7
	return e*64 + int(v>>e)
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	e := i/64 - 1
	lo := int64(i-e*64) << e
	return lo + (int64(1)<<e)/2
}

// Add records one latency.
func (h *Hist) Add(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest value recorded.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value below which a fraction q of the values lie.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}
