#!/usr/bin/env bash
# Makes the compose deployment's secrets in deploy/compose/secrets/ (kept out of git), once:
#   apps.json   the webgate apps (one app, random api_key/api_secret), pushed into polaris
#               by the init service as asf/default/webgate/v1/apps.json
#   client.env  the same credentials as ASF_APP_ID, ASF_API_KEY, ASF_API_SECRET for clients
#   polaris.env ASF_POLARIS_ADMIN_TOKEN, the admin token of polaris's API and console
#   pki/        the internal plane's CA (ca.crt, ca.key) and one certificate per service
#               (<service>.crt/.key, URI SAN spiffe://asf/<service>/*: a tier certificate
#               shared by the service's replicas; DNS SAN the service name), made by tools/cmd/asfpki; every gRPC hop is mutual TLS
#   nats/       NATS credentials made by tools/cmd/asfnats: <service>.nk seeds and .pub
#               public keys of polaris and lbclient, auth.conf (the nats server's users
#               and subject permissions)
# Existing files are kept; delete them to make new credentials.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
if [ ! -s "$dir/pki/ca.crt" ] || [ ! -s "$dir/pki/loader.key" ] || [ ! -s "$dir/pki/asfctl.key" ]; then
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  command -v go >/dev/null 2>&1 || { echo "secrets: go is needed to make the certificates (tools/cmd/asfpki)" >&2; exit 1; }
  (cd "$root" && go run ./tools/cmd/asfpki init --dir "$dir/pki" --instance '*')
  # The containers run as uid 65532 and read the bind-mounted files: the service keys are
  # readable by all (as apps.json below, a single-host deployment's trade-off); the CA key
  # stays the owner's.
  chmod 644 "$dir"/pki/*.crt "$dir"/pki/*.key
  chmod 600 "$dir/pki/ca.key"
fi
if [ ! -s "$dir/nats/auth.conf" ] || [ ! -s "$dir/nats/polaris.nk" ] || [ ! -s "$dir/nats/lbclient.nk" ]; then
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  command -v go >/dev/null 2>&1 || { echo "secrets: go is needed to make the NATS credentials (tools/cmd/asfnats)" >&2; exit 1; }
  (cd "$root" && go run ./tools/cmd/asfnats init --dir "$dir/nats" >/dev/null)
  # Read by the containers' uid 65532 through bind mounts (each service mounts only its
  # own seed), as the pki keys above.
  chmod 755 "$dir/nats"
  chmod 644 "$dir"/nats/*
  echo "secrets: made $dir/nats (NATS nkeys of polaris and lbclient, auth.conf)"
fi
if [ ! -s "$dir/polaris.env" ]; then
  (umask 077; printf 'ASF_POLARIS_ADMIN_TOKEN=plr_%s\n' "$(rand 24)" >"$dir/polaris.env")
  echo "secrets: made $dir/polaris.env (polaris admin token)"
fi
if [ -s "$dir/apps.json" ] && [ -s "$dir/client.env" ]; then
  echo "secrets: $dir/apps.json present"
  exit 0
fi
app="app$(rand 4)" key="$(rand 16)" secret="$(rand 24)"
umask 077
cat >"$dir/apps.json" <<JSON
{"apps": [{"app_id": "$app", "api_key": "$key", "api_secret": "$secret", "capabilities": ["*"]}]}
JSON
printf 'ASF_APP_ID=%s\nASF_API_KEY=%s\nASF_API_SECRET=%s\n' "$app" "$key" "$secret" >"$dir/client.env"
# Read by the init container's non-root user.
chmod 644 "$dir/apps.json"
echo "secrets: made $dir/apps.json and $dir/client.env (app $app)"
