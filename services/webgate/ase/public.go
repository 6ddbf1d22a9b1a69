package ase

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
)

// maxPublicMessage bounds header.message (bytes); longer text is cut at a rune boundary.
const maxPublicMessage = 1024

var (
	// internalPart matches the parts of an error chain that describe the suite's inside:
	// gRPC and socket errors, dialing, Go stack traces.
	internalPart = regexp.MustCompile(`(?i)rpc error|desc =|transport:|transport is closing|while dialing|connection error|` +
		`dial (tcp|udp|unix)|(read|write) (tcp|udp|unix)|connection refused|connection reset|broken pipe|` +
		`no route to host|network is unreachable|no such host|i/o timeout|use of closed network connection|` +
		`^\s*(connect|read|write|dial)\s*$|^\s*"?\s*$|goroutine \d|\.go:\d|\bpanic\b`)
	// internalToken matches addresses, process ids, worker numbers, socket paths and the
	// " (code N)" of a Go-rendered coded error, wherever they appear.
	internalToken = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-z]*\](:\d+)?|` + // [v6]:port
		`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|` + // v4(:port)
		`\b[0-9A-Fa-f]{0,4}::[0-9A-Fa-f:]*(%\w+)?|` + // v6 with ::
		`\b[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*:\d{2,5}\b|` + // host:port
		`\(?\bpids? \d+\)?|` + // pid 1234, (pid 1234)
		`[^\s"'()]*\.sock\b|` + // unix socket paths
		`\s*\(code \d+\)`)
	workerNumber = regexp.MustCompile(`(?i)\b(worker|instance|replica)( #?| )\d+\b`)
	spaces       = regexp.MustCompile(`[ \t]{2,}|\(\s*\)|\[\s*\]`)
)

// codeText is the public description of the codes webgate may answer with.
var codeText = map[int]string{}

func init() {
	for _, e := range []*aserr.Error{
		aserr.ErrInvalidOp, aserr.ErrInvalidHandle, aserr.ErrInvalidData, aserr.ErrReleased, aserr.ErrOnceTimeout,
		aserr.ErrRepeatedSession, aserr.ErrInvalidOutput, aserr.ErrInvalidParam, aserr.ErrEngineCrashed, aserr.ErrLicenceFull,
		aserr.ErrSessionTimeout, aserr.ErrInvalidResult, aserr.ErrBadRequest, aserr.ErrReadTimeout, aserr.ErrAppID,
		aserr.ErrNotFound, aserr.ErrNetwork, aserr.ErrNoEngine, aserr.ErrInternal, aserr.ErrResNotFound,
	} {
		codeText[e.Code] = e.Msg
	}
}

// PublicMessage is the header.message a public client gets for an error with code and
// message msg (as aserr.MessageOf renders it): the reason stays — an engine's message, a
// wrapped reason such as `output "boxes" not among the expected outputs` — while what
// only the inside of the suite should see is left out: the parts of an error chain that
// come from gRPC, sockets and dialing (`rpc error: …`, `dial tcp …: connection
// refused`), addresses (IPs, host:port), process ids, worker numbers, socket paths,
// stack traces and " (code N)". When nothing is left, the code's description is used.
// The full message belongs in the log, with the sid.
func PublicMessage(code int, msg string) string {
	if len(msg) > 4*maxPublicMessage {
		msg = msg[:4*maxPublicMessage]
	}
	var keep []string
	for _, part := range strings.Split(msg, ": ") {
		if internalPart.MatchString(part) {
			continue
		}
		// Removing a token or a space can join two others into a new one: repeat until
		// nothing changes (every change shortens the text).
		for {
			next := internalToken.ReplaceAllString(part, "")
			next = workerNumber.ReplaceAllString(next, "$1")
			next = spaces.ReplaceAllStringFunc(next, func(m string) string {
				if m[0] == ' ' || m[0] == '\t' {
					return " "
				}
				return ""
			})
			if next == part {
				break
			}
			part = next
		}
		part = strings.Trim(part, " \t\r\n,;")
		if strings.Count(part, `"`)%2 == 1 { // a quote left open by a dropped neighbour
			part = strings.Trim(part, ` "`)
		}
		if part == "" || internalPart.MatchString(part) || (len(keep) > 0 && keep[len(keep)-1] == part) {
			continue
		}
		keep = append(keep, part)
	}
	out := strings.Join(keep, ": ")
	if out == "" {
		if t, ok := codeText[code]; ok {
			return t
		}
		if code == 0 {
			return "success"
		}
		return "error"
	}
	if len(out) > maxPublicMessage {
		cut := maxPublicMessage
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		return PublicMessage(code, out[:cut]) // tidy the cut end like any other
	}
	return out
}
