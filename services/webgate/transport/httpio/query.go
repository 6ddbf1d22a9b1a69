package httpio

import (
	"net/url"
	"strings"
)

// QueryGet returns what url.ParseQuery(raw).Get(key) returns — the first value of key,
// unescaped, "" when there is none — without building the map: a signed request's query
// (authorization, date, host) is looked up a few keys at a time on every request, and
// only the values asked for are unescaped. Pairs are read as ParseQuery reads them: split
// on '&', a pair holding ';' skipped, the key and value split at the first '=', a pair
// whose key or value does not unescape skipped.
func QueryGet(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") { // an escaped key: compared unescaped
			if uk, err := url.QueryUnescape(k); err != nil || uk != key {
				continue
			}
		} else if k != key {
			continue
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		return uv
	}
	return ""
}
