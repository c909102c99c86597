package signals

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// Consent decides whether edgeseg may keep a profile for a visitor.
// It is safe for concurrent use.
type Consent struct {
	gpc, dnt bool
	cookie   string
	granted  [][]byte
	dflt     bool
	context  bool
}

// NewConsent builds the consent check from cfg.
func NewConsent(cfg config.Consent) *Consent {
	c := &Consent{gpc: cfg.RespectGPC, dnt: cfg.RespectDNT, cookie: cfg.Cookie, context: cfg.ContextWithoutConsent}
	for _, g := range cfg.Granted {
		c.granted = append(c.granted, []byte(g))
	}
	switch cfg.Default {
	case "granted":
		c.dflt = true
	case "denied":
		c.dflt = false
	default:
		c.dflt = cfg.Cookie == ""
	}
	return c
}

// Decision is the outcome of a consent check.
type Decision struct {
	// Granted allows reading and writing the profile cookie.
	Granted bool
	// Context allows context signals (device, time, referrer, geo).
	Context bool
	// Reason says what decided: gpc, dnt, cookie, default.
	Reason string
}

// From decides consent for req. An opt-out signal (GPC, DNT) wins over a
// consent cookie that grants.
func (c *Consent) From(h *fasthttp.RequestHeader) Decision {
	denied := func(reason string) Decision { return Decision{Context: c.context, Reason: reason} }
	if c.gpc && bytes.Equal(bytes.TrimSpace(h.Peek("Sec-GPC")), []byte("1")) {
		return denied("gpc")
	}
	if c.dnt && bytes.Equal(bytes.TrimSpace(h.Peek("DNT")), []byte("1")) {
		return denied("dnt")
	}
	if c.cookie != "" {
		if v := h.Cookie(c.cookie); v != nil {
			for _, g := range c.granted {
				if bytes.Equal(v, g) || (len(g) > 1 && bytes.Contains(v, g)) {
					return Decision{Granted: true, Context: true, Reason: "cookie"}
				}
			}
			return denied("cookie")
		}
	}
	if c.dflt {
		return Decision{Granted: true, Context: true, Reason: "default"}
	}
	return denied("default")
}
