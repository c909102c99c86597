package templates

import (
	"encoding/json"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aymerick/raymond"
)

// helpers returns the helpers every block gets. They are registered per
// template (raymond's global registry panics on duplicates and is shared
// state). A helper given bad arguments returns an empty string rather than
// failing the block.
func helpers() map[string]interface{} { return helperMap }

var helperMap = map[string]interface{}{
	"eq":             func(a, b interface{}) bool { return raymond.Str(a) == raymond.Str(b) },
	"ne":             func(a, b interface{}) bool { return raymond.Str(a) != raymond.Str(b) },
	"gt":             func(a, b interface{}) bool { return toFloat(a) > toFloat(b) },
	"lt":             func(a, b interface{}) bool { return toFloat(a) < toFloat(b) },
	"default":        defaultHelper,
	"upper":          func(s interface{}) string { return strings.ToUpper(raymond.Str(s)) },
	"lower":          func(s interface{}) string { return strings.ToLower(raymond.Str(s)) },
	"truncate":       truncate,
	"formatNumber":   formatNumber,
	"formatCurrency": formatCurrency,
	"pluralize":      pluralize,
	"json":           jsonHelper,
	"urlQuery":       func(s interface{}) string { return url.QueryEscape(raymond.Str(s)) },
	"url":            safeURL,
	"js":             jsString,
}

func defaultHelper(v, fallback interface{}) interface{} {
	if v == nil || raymond.Str(v) == "" {
		return fallback
	}
	return v
}

func truncate(s interface{}, n int) string {
	str := raymond.Str(s)
	if n <= 0 || utf8.RuneCountInString(str) <= n {
		return str
	}
	r := []rune(str)
	return strings.TrimRight(string(r[:n]), " ") + "…"
}

func toFloat(v interface{}) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(raymond.Str(v)), 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// formatNumber writes a number with thousands separators and the given
// decimals: {{formatNumber 1234.5 2}} → 1,234.50.
func formatNumber(v interface{}, decimals int) string {
	f := toFloat(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	if decimals < 0 || decimals > 6 {
		decimals = 0
	}
	s := strconv.FormatFloat(math.Abs(f), 'f', decimals, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if f < 0 {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CHF": "CHF "}

// formatCurrency writes an amount in a currency: {{formatCurrency 39 "USD"}} → $39.00.
func formatCurrency(v interface{}, currency string) string {
	f := toFloat(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	currency = strings.ToUpper(currency)
	decimals := 2
	if currency == "JPY" {
		decimals = 0
	}
	n := formatNumber(f, decimals)
	if sym, ok := currencySymbols[currency]; ok {
		if strings.HasPrefix(n, "-") {
			return "-" + sym + n[1:]
		}
		return sym + n
	}
	return n + " " + currency
}

// pluralize picks singular or plural by count: {{pluralize 3 "item" "items"}}.
func pluralize(count interface{}, singular, plural string) string {
	if toFloat(count) == 1 {
		return singular
	}
	return plural
}

// jsonHelper writes v as JSON, safe inside a <script> block (<, >, & are
// escaped by encoding/json).
func jsonHelper(v interface{}) raymond.SafeString {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return raymond.SafeString(b)
}

// jsString writes s as a quoted JavaScript string literal.
func jsString(s interface{}) raymond.SafeString {
	b, _ := json.Marshal(raymond.Str(s))
	return raymond.SafeString(b)
}

// safeURL passes http(s), mailto, tel and relative URLs, attribute-escaped;
// anything else (javascript:, data:) becomes "#".
func safeURL(s interface{}) raymond.SafeString {
	str := strings.TrimSpace(raymond.Str(s))
	u, err := url.Parse(str)
	if err != nil {
		return "#"
	}
	switch strings.ToLower(u.Scheme) {
	case "", "http", "https", "mailto", "tel":
		return raymond.SafeString(template.HTMLEscapeString(str))
	}
	return "#"
}
