package signals

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

func TestIdentity(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	dir := t.TempDir()
	pubFile := filepath.Join(dir, "site.pub")
	os.WriteFile(pubFile, pubPEM, 0o644)

	cfg := config.Default()
	cfg.Identity = config.Identity{Cookie: "session", Algorithms: []string{"RS256"}, Claims: []string{"tier", "loyalty"},
		Keys: []config.IdentityKey{{ID: "site", PublicKeyFile: pubFile}}}
	id, err := NewIdentity(cfg, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"tier": "gold", "loyalty": 3, "email": "a@b.c", "exp": now.Add(time.Hour).Unix()})
	good.Header["kid"] = "site"
	goodTok, _ := good.SignedString(rk)

	// HS256 signed with the public key's bytes: the classic confusion attack.
	conf := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tier": "platinum", "exp": now.Add(time.Hour).Unix()})
	conf.Header["kid"] = "site"
	confTok, _ := conf.SignedString(pubPEM)
	none := "eyJhbGciOiJub25lIiwia2lkIjoic2l0ZSJ9." + jwtSeg(`{"tier":"platinum","exp":9999999999}`) + "."
	expired := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"tier": "gold", "exp": now.Add(-time.Hour).Unix()})
	expired.Header["kid"] = "site"
	expTok, _ := expired.SignedString(rk)

	for _, tc := range []struct {
		name, tok, tier string
	}{
		{"valid", goodTok, "gold"},
		{"hs/rs confusion", confTok, ""},
		{"alg none", none, ""},
		{"expired", expTok, ""},
		{"garbage", "not.a.jwt", ""},
		{"tampered", goodTok[:len(goodTok)-4] + "AAAA", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.SetCookie("session", tc.tok)
			kv := id.Claims(&h, nil, now)
			if got := Lookup(kv, "tier"); got != tc.tier {
				t.Fatalf("tier = %q, want %q", got, tc.tier)
			}
			if Lookup(kv, "email") != "" {
				t.Fatal("a claim not in the allowed list was exposed")
			}
			if tc.tier != "" && Lookup(kv, "loyalty") != "3" {
				t.Fatalf("loyalty = %q", Lookup(kv, "loyalty"))
			}
		})
	}
}

func jwtSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
