package service

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces a secret value for viewers.
const Redacted = "***"

// secretNames are JSON keys whose string values are secrets (compared in lower case);
// keys ending in _secret, _password, _passwd or _token are secrets too.
var secretNames = map[string]bool{
	"api_secret": true, "apisecret": true, "secret": true, "password": true, "passwd": true,
	"token": true, "secret_key": true, "private_key": true, "access_key_secret": true,
}

// isSecretName tells whether a JSON key names a secret.
func isSecretName(k string) bool {
	k = strings.ToLower(k)
	if secretNames[k] {
		return true
	}
	for _, suf := range []string{"_secret", "_password", "_passwd", "_token"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// Redact returns content with the value of every secret key (api_secret and the like,
// see isSecretName) of a JSON document replaced by "***". Content that is not JSON, or
// holds no secret, is returned unchanged.
func Redact(content []byte) []byte {
	t := bytes.TrimSpace(content)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return content
	}
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return content
	}
	if !redactValue(v) {
		return content
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []byte(Redacted)
	}
	return append(b, '\n')
}

func redactValue(v any) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if isSecretName(k) {
				if _, isObj := e.(map[string]any); !isObj {
					if _, isArr := e.([]any); !isArr {
						x[k] = Redacted
						changed = true
						continue
					}
				}
			}
			if redactValue(e) {
				changed = true
			}
		}
	case []any:
		for _, e := range x {
			if redactValue(e) {
				changed = true
			}
		}
	}
	return changed
}
