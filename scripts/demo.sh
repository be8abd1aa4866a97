#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds Warden and
# the example guests, puts hello-world and reporter into ./extensions and
# serves them on 127.0.0.1:9200 (override with WARDEN_LISTEN). They are
# installed and approved at start with --dev-extensions (development only:
# no review), so their roles come from their own manifests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
unset RUST_BACKTRACE

echo "building warden and the example guests..."
cargo build --release --locked -p warden-host
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests -p hello-world -p reporter

mkdir -p extensions/hello
cp target/guests/wasm32-wasip2/release/hello_world.wasm extensions/hello/hello-world.wasm
cp examples/hello-world/extension.toml extensions/hello/extension.toml
mkdir -p extensions/reporter
cp target/guests/wasm32-wasip2/release/reporter.wasm extensions/reporter/reporter.wasm
cp examples/reporter/extension.toml extensions/reporter/extension.toml

listen="${WARDEN_LISTEN:-127.0.0.1:9200}"
cat <<EOT

warden is starting on http://$listen with hello-world and reporter. Every request needs
credentials: user \`admin\`, with the password printed below on the first start
(or the one in WARDEN_INITIAL_ADMIN_PASSWORD when ./data was first created).
In another terminal:

    curl -u admin:<password> http://$listen/_extensions/hello/greet/world
    curl -u admin:<password> http://$listen/_warden/health
    curl -u admin:<password> http://$listen/_plugins/_security/authinfo
    target/release/warden inspect extensions/hello/hello-world.wasm

A scheduled job (reporter; its policy role came from its manifest): index
some events, consent to the reporter reading `logs-*` and writing `reports` for
you, ask for a summary every 10 s, read the reports it writes as you:

    P=<password>; H=http://$listen
    target/release/warden ext show reporter
    curl -u admin:\$P -XPOST \$H/logs-app/_doc -H 'content-type: application/json' -d "{\"level\":\"error\",\"@timestamp\":\$(date +%s000)}"
    curl -u admin:\$P -XPOST \$H/_warden/consents -H 'content-type: application/json' \\
      -d '{"extension":"reporter","scopes":{"index_permissions":[{"index_patterns":["logs-*"],"allowed_actions":["read"]},{"index_patterns":["reports"],"allowed_actions":["crud","create_index"]}]}}'
    curl -u admin:\$P -XPUT \$H/_extensions/reporter/summaries/app -H 'content-type: application/json' \\
      -d '{"source":"logs-*","field":"level","window":"1d","every_secs":10}'
    curl -u admin:\$P \$H/_extensions/reporter/summaries/app/reports
    target/release/warden jobs list

Stop it with Ctrl-C.
EOT
# The extensions are installed from ./extensions (--dev-extensions), so the
# directory-extension path gets an empty one.
mkdir -p ./data/no-directory-extensions
exec target/release/warden serve --listen "$listen" --data-dir ./data \
  --extensions-dir ./data/no-directory-extensions --dev-extensions ./extensions
