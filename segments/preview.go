package segments

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Previews mints and verifies editors' preview tokens: a signed JWT naming
// a segment, which forces a request into that segment. It is safe for
// concurrent use.
type Previews struct {
	secret []byte
	parser *jwt.Parser
}

const previewAudience = "edgeseg-preview"

// NewPreviews returns a Previews signing with secret (32+ bytes).
func NewPreviews(secret string) (*Previews, error) {
	if len(secret) < 32 {
		return nil, errors.New("preview: secret must be at least 32 bytes")
	}
	return &Previews{
		secret: []byte(secret),
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(previewAudience), jwt.WithoutClaimsValidation()),
	}, nil
}

type previewClaims struct {
	Segment string `json:"seg"`
	jwt.RegisteredClaims
}

// Mint returns a token forcing segment until now+ttl.
func (p *Previews) Mint(segment string, ttl time.Duration, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, previewClaims{Segment: segment, RegisteredClaims: jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{previewAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}})
	return t.SignedString(p.secret)
}

// Verify returns the segment a token forces, or an error when the token is
// forged, expired or malformed.
func (p *Previews) Verify(token string, now time.Time) (string, error) {
	seg, _, err := p.VerifyUntil(token, now)
	return seg, err
}

// VerifyUntil is Verify, also returning when the token expires.
func (p *Previews) VerifyUntil(token string, now time.Time) (string, time.Time, error) {
	if p == nil {
		return "", time.Time{}, errors.New("preview: disabled")
	}
	if len(token) > 1024 {
		return "", time.Time{}, errors.New("preview: token too long")
	}
	var c previewClaims
	if _, err := p.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return p.secret, nil }); err != nil {
		return "", time.Time{}, err
	}
	if c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time) {
		return "", time.Time{}, errors.New("preview: expired")
	}
	aud := false
	for _, a := range c.Audience {
		aud = aud || a == previewAudience
	}
	if !aud || c.Segment == "" {
		return "", time.Time{}, errors.New("preview: not a preview token")
	}
	return c.Segment, c.ExpiresAt.Time, nil
}
