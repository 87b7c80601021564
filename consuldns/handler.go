package consuldns

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Handler answers the questions of the domain from a Catalog, as Consul's
// DNS server does. It is a dns.Handler.
type Handler struct {
	cfg     Config
	cat     Catalog
	timeout time.Duration
	slots   chan struct{} // bounds the questions answered at once
	log     *slog.Logger
}

// NewHandler returns a Handler over cat; zero fields of cfg and lim take
// their defaults.
func NewHandler(cfg Config, cat Catalog, lim Limits, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim = lim.withDefaults()
	return &Handler{cfg: cfg.withDefaults(), cat: cat, timeout: lim.QueryTimeout,
		slots: make(chan struct{}, lim.MaxInFlight), log: log}
}

// ServeDNS answers one message; TCP answers are complete (up to 64 KiB),
// UDP ones trimmed to what the client takes.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := w.WriteMsg(h.Answer(ctx, req, tcp)); err != nil {
		h.log.Debug("DNS reply not sent", "err", err)
	}
}

// Answer builds the reply to req, received over TCP or UDP.
func (h *Handler) Answer(ctx context.Context, req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	switch {
	case len(req.Question) != 1:
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
	case !inZone(req.Question[0].Name, h.cfg.Domain) && !inZone(req.Question[0].Name, arpaZone):
		m.SetRcode(req, dns.RcodeRefused) // no recursion is offered
	default:
		h.answerInZone(ctx, req, m)
	}
	setEDNS(req, m)
	if trim(req, m, tcp, h.cfg.UDPAnswerLimit) && h.cfg.EnableTruncate {
		m.Truncated = true
	}
	return m
}

// answerInZone answers a question of the domain, or SERVFAIL at once when
// the bound of questions answered at once is reached.
func (h *Handler) answerInZone(ctx context.Context, req, m *dns.Msg) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		m.SetRcode(req, dns.RcodeServerFailure)
		return
	}
	m.Authoritative = true
	h.fill(ctx, req, m)
}

// fill answers the question into m and sets its code.
func (h *Handler) fill(ctx context.Context, req, m *dns.Msg) {
	q := req.Question[0]
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = append(m.Answer, soa(h.cfg, time.Now()))
		m.Ns, m.Extra = h.nameServers(ctx)
	case dns.TypeNS:
		m.Answer, m.Extra = h.nameServers(ctx)
	case dns.TypeAXFR, dns.TypeIXFR:
		m.SetRcode(req, dns.RcodeNotImplemented)
	default:
		err := h.lookup(ctx, q, m)
		code := dns.RcodeSuccess
		switch {
		case errors.Is(err, errNameNotFound):
			code = dns.RcodeNameError
		case err != nil && !errors.Is(err, errNoData):
			h.log.Warn("DNS query failed", "question", q.String(), "err", err)
			m.SetRcode(req, dns.RcodeServerFailure)
			return
		}
		if err != nil {
			m.Ns = append(m.Ns, soa(h.cfg, time.Now()))
		}
		m.SetRcode(req, code)
	}
}

// nameServers are the NS records of up to three servers, in random order,
// with their addresses; none when the servers cannot be read.
func (h *Handler) nameServers(ctx context.Context) (ns, glue []dns.RR) {
	servers, err := h.cat.Servers(ctx)
	if err != nil {
		h.log.Warn("DNS: cannot list the servers", "err", err)
		return nil, nil
	}
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	return nameServers(h.cfg, servers)
}

// lookup answers a name: a reverse lookup, or a name of the domain.
func (h *Handler) lookup(ctx context.Context, q dns.Question, m *dns.Msg) error {
	if inZone(q.Name, arpaZone) {
		return h.ptrAnswer(ctx, q, m)
	}
	return h.dispatch(ctx, q, m)
}

// dispatch answers a name of the domain: a service, a node or an address.
func (h *Handler) dispatch(ctx context.Context, q dns.Question, m *dns.Msg) error {
	l, err := parseName(dns.Fqdn(q.Name), h.cfg.Domain, h.cfg.Datacenter, q.Qtype)
	if err != nil {
		return err
	}
	switch l.kind {
	case kindService:
		var tags []string
		if l.tag != "" {
			tags = []string{l.tag}
		}
		es, err := h.cat.ServiceInstances(ctx, l.service, tags, h.cfg.OnlyPassing)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return errNameNotFound
		}
		rand.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		return serviceAnswer(h.cfg, q, l, es, m)
	case kindNode:
		return h.nodeAnswer(ctx, q, l, m)
	}
	addrAnswer(h.cfg, q, l, m)
	return nil
}

// nodeAnswer answers a node's name: its address (A, AAAA or a CNAME) and
// its meta as TXT records (in the answer for TXT and ANY, else in the
// additional section). Other types get an empty answer, as in Consul.
func (h *Handler) nodeAnswer(ctx context.Context, q dns.Question, l lookup, m *dns.Msg) error {
	switch q.Qtype {
	case dns.TypeANY, dns.TypeA, dns.TypeAAAA, dns.TypeTXT:
	default:
		return nil
	}
	n, err := h.cat.Node(ctx, l.node)
	if err != nil {
		return err
	}
	if n == nil {
		return errNameNotFound
	}
	ttl := seconds(h.cfg.NodeTTL)
	if q.Qtype != dns.TypeTXT {
		m.Answer = append(m.Answer, nodeAddressRecords(q.Qtype, n, q.Name, ttl)...)
	}
	meta := metaTXT(n, q.Name, ttl)
	switch {
	case q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY:
		m.Answer = append(m.Answer, meta...)
	case h.cfg.NodeMetaTXT:
		m.Extra = append(m.Extra, meta...)
	}
	return nil
}

// addrAnswer answers <hex>.addr: the address itself, in the answer when
// the type asks for its family (or ANY), else in the additional section.
func addrAnswer(cfg Config, q dns.Question, l lookup, m *dns.Msg) {
	name := strings.ToLower(dns.Fqdn(q.Name))
	want := dns.TypeA
	if l.addr.To4() == nil {
		want = dns.TypeAAAA
	}
	rr := ipRecord(want, l.addr, name, seconds(cfg.NodeTTL))
	if q.Qtype == want || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, rr)
	} else {
		m.Extra = append(m.Extra, rr)
	}
}

// setEDNS answers an EDNS0 question with an OPT record of the same UDP
// size.
func setEDNS(req, m *dns.Msg) {
	opt := req.IsEdns0()
	if opt == nil {
		return
	}
	out := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	out.SetUDPSize(opt.UDPSize())
	m.Extra = append(m.Extra, out)
}
