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
			// Consent managers URL-encode their cookies (OneTrust's
			// groups=C0004%3A1, Cookiebot's %2Cmarketing:true): a granted
			// value matches the cookie as sent or as decoded.
			var buf [512]byte
			dec := v
			if bytes.IndexByte(v, '%') >= 0 {
				dec = percentDecode(buf[:0], v)
			}
			for _, g := range c.granted {
				if grants(v, g) || grants(dec, g) {
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

// grants reports whether the consent cookie value v is, or holds, the
// granted value g (one character only whole: "1" is not in "C0001").
func grants(v, g []byte) bool {
	return bytes.Equal(v, g) || len(g) > 1 && bytes.Contains(v, g)
}

// percentDecode appends s with its %XX escapes decoded to dst; a '%' not
// followed by two hex digits is kept as it is.
func percentDecode(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				dst = append(dst, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		dst = append(dst, s[i])
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
