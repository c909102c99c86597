package signals

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// Identity verifies the site's own login token and exposes the claims
// config allows as signals (claim("tier")). A token that does not verify
// yields no claims. A nil *Identity yields no claims.
type Identity struct {
	cookie, header string
	parser         *jwt.Parser
	hmac           map[string][]byte
	rsa            map[string]*rsa.PublicKey
	ec             map[string]*ecdsa.PublicKey
	claims         []string
}

// NewIdentity builds the verifier from cfg, or returns nil when identity
// is off.
func NewIdentity(cfg *config.Config, getenv func(string) string) (*Identity, error) {
	ic := cfg.Identity
	if ic.Cookie == "" && ic.Header == "" {
		return nil, nil
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(ic.Algorithms), jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if ic.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(ic.Issuer))
	}
	if ic.Audience != "" {
		opts = append(opts, jwt.WithAudience(ic.Audience))
	}
	id := &Identity{cookie: ic.Cookie, header: ic.Header, parser: jwt.NewParser(opts...), claims: ic.Claims,
		hmac: map[string][]byte{}, rsa: map[string]*rsa.PublicKey{}, ec: map[string]*ecdsa.PublicKey{}}
	for i, k := range ic.Keys {
		key := fmt.Sprintf("identity.keys[%d]", i)
		switch {
		case k.Secret != "" || k.SecretEnv != "":
			v := k.Secret
			if k.SecretEnv != "" {
				v = getenv(k.SecretEnv)
			}
			if len(v) < 32 {
				return nil, config.Problems{cfg.Problemf(key, "HMAC secret must hold at least 32 bytes")}
			}
			id.hmac[k.ID] = []byte(v)
		case k.PublicKeyFile != "":
			pem, err := os.ReadFile(k.PublicKeyFile)
			if err != nil {
				return nil, config.Problems{cfg.Problemf(key+".public_key_file", "%v", err)}
			}
			if rk, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
				id.rsa[k.ID] = rk
			} else if ek, err2 := jwt.ParseECPublicKeyFromPEM(pem); err2 == nil {
				id.ec[k.ID] = ek
			} else {
				return nil, config.Problems{cfg.Problemf(key+".public_key_file", "not an RSA or EC public key in PEM: %v", err)}
			}
		}
	}
	return id, nil
}

// keyFor returns the verification key for a token: by kid, and only of
// the type its algorithm needs, so an HS256 token can never be checked
// against an RSA public key (algorithm confusion).
func (id *Identity) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	var k any
	var ok bool
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		k, ok = pick(id.hmac, kid)
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		k, ok = pick(id.rsa, kid)
	case *jwt.SigningMethodECDSA:
		k, ok = pick(id.ec, kid)
	}
	if !ok {
		return nil, fmt.Errorf("identity: no %s key for kid %q", t.Method.Alg(), kid)
	}
	return k, nil
}

// pick returns the key named kid, or the only key when the token names
// none.
func pick[K any](keys map[string]K, kid string) (K, bool) {
	if k, ok := keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, true
		}
	}
	var zero K
	return zero, false
}

// Claims appends the allowed claims of a verified token in h to dst.
func (id *Identity) Claims(h *fasthttp.RequestHeader, dst []KV, now time.Time) []KV {
	if id == nil {
		return dst
	}
	var tok []byte
	if id.cookie != "" {
		tok = h.Cookie(id.cookie)
	} else if v := h.Peek(id.header); len(v) > 0 {
		tok = v
		if b, ok := bytes.CutPrefix(v, []byte("Bearer ")); ok {
			tok = b
		}
	}
	if len(tok) == 0 || len(tok) > 8192 {
		return dst
	}
	mc := jwt.MapClaims{}
	if _, err := id.parser.ParseWithClaims(string(tok), mc, id.keyFor); err != nil {
		return dst
	}
	for _, name := range id.claims {
		if v, ok := mc[name]; ok {
			s := strings.TrimSpace(fmt.Sprint(v))
			if len(s) > 128 {
				s = s[:128]
			}
			dst = append(dst, KV{name, s})
		}
	}
	return dst
}
