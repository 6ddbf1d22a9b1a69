// Command asfrun starts the whole suite locally from built binaries (see tools/suite),
// prints how to call it, and stops everything cleanly on Ctrl-C. `make run` uses it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/tools/suite"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the service binaries")
	loaders := flag.Int("loaders", 2, "echo loaders to start")
	licence := flag.Int("licence", 10, "licence (concurrent sessions) per loader")
	logDir := flag.String("logs", ".run/logs", "directory for the services' logs (state goes to its sibling data/)")
	free := flag.Bool("free-ports", false, "use free ports instead of the default ones")
	level := flag.String("log-level", "info", "log level of every service")
	engines := flag.String("engines", "tts,asr,digits", "demo engines to start beside echo (those that are built)")
	flag.Parse()

	extra, schemas, skipped := demoEngines(*bin, *engines)
	app, err := demoApp(filepath.Join(filepath.Dir(filepath.Clean(*logDir)), "data", "demo-app"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("starting polaris (with embedded NATS), lbclient, loaders, atom and webgate ...")
	s, err := suite.Start(ctx, suite.Options{BinDir: *bin, Loaders: *loaders, Engine: "echo", Licence: *licence,
		LogDir: *logDir, FixedPorts: !*free, LogLevel: *level, Extra: extra, Schemas: schemas, App: app})
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}
	printUsage(s, *bin, extra, skipped)
	<-ctx.Done()
	fmt.Println("\nstopping ...")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "asfrun:", err)
		os.Exit(1)
	}
	fmt.Println("stopped")
}

// demoApp returns the local demo app's keys, generated once and kept in file (mode 0600)
// so that they stay the same across runs.
func demoApp(file string) (suite.App, error) {
	if b, err := os.ReadFile(file); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			return suite.App{AppID: f[0], APIKey: f[1], APISecret: f[2]}, nil
		}
	}
	key, secret := make([]byte, 16), make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return suite.App{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return suite.App{}, err
	}
	app := suite.App{AppID: "demo", APIKey: hex.EncodeToString(key), APISecret: hex.EncodeToString(secret)}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return suite.App{}, err
	}
	return app, os.WriteFile(file, []byte(app.AppID+" "+app.APIKey+" "+app.APISecret+"\n"), 0o600)
}

// demoEngines returns the loaders and schemas of the demo engines in names that are built
// (scripts/engines.sh builds them into bin/engines and says why when it cannot), and why
// each other one is skipped.
func demoEngines(bin, names string) (extra []suite.Loader, schemas []string, skipped []string) {
	root := filepath.Dir(filepath.Clean(bin))
	if names == "" {
		return nil, nil, nil
	}
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		var l suite.Loader
		switch name {
		case "tts", "asr":
			lib := filepath.Join(bin, "engines", "lib"+name+".so")
			if _, err := os.Stat(lib); err != nil {
				skipped = append(skipped, fmt.Sprintf("%s: %s not built (run scripts/engines.sh: it installs the Debian packages as root and says what is missing)", name, lib))
				continue
			}
			l = suite.Loader{Name: "loader-" + name, Service: name, Args: []string{"--engine", "c", "--engine-path", lib}}
			if name == "tts" {
				l.Args = append(l.Args, "--async") // stream mode sends audio as it is synthesised
			} else {
				l.Args = append(l.Args, "--licence", "4")
			}
		case "digits":
			if err := exec.Command("/usr/bin/python3", "-c", "import sklearn").Run(); err != nil {
				skipped = append(skipped, "digits: /usr/bin/python3 cannot import sklearn (Debian python3-sklearn; scripts/engines.sh installs it as root)")
				continue
			}
			l = suite.Loader{Name: "loader-digits", Service: "digits", Args: []string{"--engine", "python", "--workers", "2",
				"--engine-path", filepath.Join(root, "examples", "engines", "digits", "wrapper.py")}}
		default:
			skipped = append(skipped, name+": unknown demo engine")
			continue
		}
		extra = append(extra, l)
		schemas = append(schemas, filepath.Join(root, "examples", "engines", name, "schema_"+name+".json"))
	}
	return extra, schemas, skipped
}

func printUsage(s *suite.Suite, bin string, extra []suite.Loader, skipped []string) {
	url := s.WebgateURL()
	app := s.App()
	keys := fmt.Sprintf("--app-id %s --api-key %s --api-secret %s", app.AppID, app.APIKey, app.APISecret)
	token := s.AdminToken()
	if token == "" {
		token = "(printed once, at the first start on this data directory: see the first run's polaris log)"
	}
	fmt.Printf(`
Athena Serving is up.
  webgate  %s      (ASE over HTTP and WebSocket, HMAC auth on)
  atom     %s
  lbclient %s
  polaris  %s      (NATS %s)
  console  %s      admin token: %s
  loaders  %v
  logs     %s

Demo app (accepted while polaris holds no apps.json):
  app_id %s   api_key %s   api_secret %s

Once request (HTTP, signed URL valid for 5 minutes):
  curl -s -X POST "$(%s/asfcall sign --url %s/v1/private/echo %s)" -H 'Content-Type: application/json' \
    -d '{"header":{"app_id":"%s","status":3},"parameter":{"echo":{}},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGVsbG8gYXRoZW5h"}}}'

Streaming session (WebSocket, three frames with status 0, 1, 2):
  %s/asfcall stream --url %s/v1/private/echo %s --frames 3 --text "hello athena"

%s
Metrics: curl http://%s/metrics     Ctrl-C stops everything.
`, url, s.AtomAddr(), s.LBAddr(), s.PolarisAddr(), s.NATSURL(), s.ConsoleURL(), token, s.LoaderAddrs(), s.LogDir(),
		app.AppID, app.APIKey, app.APISecret,
		bin, url, keys, app.AppID,
		bin, url, keys, demoUsage(bin, url, keys, extra, skipped), s.AdminAddrs()["webgate"][0])
}

func demoUsage(bin, url, keys string, extra []suite.Loader, skipped []string) string {
	var b strings.Builder
	for _, l := range extra {
		switch l.Service {
		case "tts":
			fmt.Fprintf(&b, "Speech synthesis (tts, 16 kHz PCM out):\n  %s/asedemo tts --url %s %s --text \"turn the kitchen light on\" --out light.pcm\n\n", bin, url, keys)
		case "asr":
			fmt.Fprintf(&b, "Speech recognition (asr, streams light.pcm in 40 ms frames over WebSocket):\n  %s/asedemo asr --url %s %s --audio light.pcm --keywords \"kitchen light\"\n\n", bin, url, keys)
		case "digits":
			fmt.Fprintf(&b, "Image classification (digits, Python engine):\n  %s/asedemo digits --url %s %s --image examples/engines/digits/testdata/seven.png\n\n", bin, url, keys)
		}
	}
	for _, why := range skipped {
		fmt.Fprintf(&b, "Skipped %s\n", why)
	}
	return b.String()
}
