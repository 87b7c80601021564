package consuldns

import (
	"math"
	"strings"

	"github.com/miekg/dns"
)

// Size bounds of a reply, as Consul's.
const (
	defaultUDPSize = 512                 // without EDNS0 (RFC 1035)
	maxUDPSize     = math.MaxUint16 - 68 // the largest datagram Consul sends
	maxTCPSize     = 65523               // 64 KiB less the framing
	udpHeader      = 8
	maxTCPAnswers  = 4096 // no more records fit in 64 KiB
	maxTCPSRV      = 1024
)

// trim cuts a reply to what its transport carries and reports whether it
// cut answers: over UDP to the EDNS0 size asked (512 bytes without EDNS0,
// where at most udpAnswerLimit answers are sent), over TCP to 64 KiB. The
// additional section keeps only the records of the SRV targets left.
func trim(req, resp *dns.Msg, tcp bool, udpAnswerLimit int) bool {
	n := len(resp.Answer)
	ex := splitExtra(resp.Extra)
	maxSize := maxTCPSize
	if tcp {
		limit := maxTCPAnswers
		if req.Question[0].Qtype == dns.TypeSRV {
			limit = maxTCPSRV
		}
		if len(resp.Answer) > limit {
			resp.Answer = resp.Answer[:limit]
		}
	} else {
		maxSize = udpSize(req)
		compress := resp.Compress
		defer func() { resp.Compress = compress }()
		if limit := min(maxUDPAnswerLimit, udpAnswerLimit); maxSize == defaultUDPSize && len(resp.Answer) > limit {
			resp.Compress = false // sized uncompressed, sent compressed, as Consul
			resp.Answer = resp.Answer[:limit]
		}
		maxSize -= udpHeader
	}
	if len(resp.Answer) < n {
		ex.sync(resp)
	}
	for len(resp.Answer) > 1 && resp.Len() > maxSize {
		resp.Ns = nil
		resp.Answer = resp.Answer[:fitting(resp, maxSize, ex)]
		ex.sync(resp)
	}
	return len(resp.Answer) < n
}

// udpSize is the reply size a UDP question allows.
func udpSize(req *dns.Msg) int {
	size := defaultUDPSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, maxUDPSize)
}

// fitting is the largest number of answers (at least one less than now)
// whose reply fits in maxSize, found by bisection.
func fitting(resp *dns.Msg, maxSize int, ex extras) int {
	all := resp.Answer
	defer func() { resp.Answer = all }()
	lo, hi := 1, len(all)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		resp.Answer = all[:mid]
		ex.sync(resp)
		if resp.Len() <= maxSize {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// extras are a reply's additional records: those of the SRV targets by
// lower-case owner name, and its OPT record.
type extras struct {
	byName map[string][]dns.RR
	opt    []dns.RR
}

func splitExtra(rrs []dns.RR) extras {
	ex := extras{byName: map[string][]dns.RR{}}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			ex.opt = append(ex.opt, rr)
			continue
		}
		name := strings.ToLower(rr.Header().Name)
		ex.byName[name] = append(ex.byName[name], rr)
	}
	return ex
}

// sync keeps in the additional section the records of the SRV targets
// still answered, each target once, and the OPT record.
func (ex extras) sync(resp *dns.Msg) {
	var extra []dns.RR
	done := map[string]bool{}
	for _, rr := range resp.Answer {
		s, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		t := strings.ToLower(s.Target)
		if !done[t] {
			done[t] = true
			extra = append(extra, ex.byName[t]...)
		}
	}
	resp.Extra = append(extra, ex.opt...)
}
